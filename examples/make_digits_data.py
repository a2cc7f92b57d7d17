"""Write the example data: the owner's validation set and three data owners' private CSV files, made from
scikit-learn's bundled digits (non-IID Dirichlet shards), plus a dev-only aggregator X25519 key file.

Run: .venv/bin/python examples/make_digits_data.py   (writes into examples/data/)
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from client.accounts import create_x25519_key
from marketplace.data import Dataset, dirichlet_split, load_builtin, split_holdout

HERE = Path(__file__).parent
DEV_PASSWORD = "dev-only"  # the example key guards nothing of value; never reuse it


def write_csv(path: Path, ds: Dataset) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"pixel_{i}" for i in range(ds.X.shape[1])] + ["label"])
        for features, label in zip(ds.X, ds.y, strict=True):
            writer.writerow([f"{v:.4f}" for v in features] + [int(label)])


def main(out: Path = HERE / "data", owners: int = 3) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data, _ = load_builtin("digits")
    train, validation, _test = split_holdout(data, val_fraction=0.15, test_fraction=0.2, seed=0)
    write_csv(out / "validation.csv", validation)
    for i, part in enumerate(dirichlet_split(train.y, owners, alpha=0.5, seed=0), start=1):
        write_csv(out / f"owner-{i}.csv", train.subset(part))
    key = out / "aggregator.x25519.json"
    password = os.environ.get("FEDMARKET_PASSWORD")
    print(f"wrote the validation set and {owners} owners' data to {out}")
    if key.exists():
        print(f"kept the aggregator key {key} from an earlier run, with the password it was made with")
        return
    create_x25519_key(key, password or DEV_PASSWORD)
    said = "$FEDMARKET_PASSWORD" if password else f'"{DEV_PASSWORD}"'
    print(f"aggregator key {key}: password {said} (`fedmarket aggregate run` asks for it, or reads "
          "FEDMARKET_PASSWORD)")


if __name__ == "__main__":
    main()
