"""How the dashboard writes numbers: ether for ETH (never a nonzero amount as 0), reputations at the scale they
are posted, contributions as shares of the round, a task's protocol in one line."""

from __future__ import annotations

from marketplace.service.dashboard import _amount, _reputation, _share


def test_ether_amounts_and_dust() -> None:
    assert _amount(3 * 10**18) == "3 ETH" and _amount(10**17) == "0.1 ETH"
    assert _amount(10**18 - 1) == "0.999999 ETH"  # truncated, not rounded up to what was not paid
    assert _amount(3) == "3 wei" and _amount(0) == "0 ETH" and _amount(None) == "–"
    assert _amount(12_345, token="0x" + "11" * 20) == "12,345"  # a token's base units


def test_reputations_and_contribution_shares() -> None:
    assert _reputation(str(3 << 18)) == 0.75  # posted as strings, 2^20 = 1
    contributions = ["30", "0", "-5", "10"]
    assert [_share(contributions, i) for i in range(4)] == ["75.0%", "0.0%", "0.0%", "25.0%"]
    assert _share(["0", "-1"], 0) == "–"


def test_terms_read_as_the_spec_wrote_them() -> None:
    from marketplace.text import rules_text

    recorded = {"clip_norm": 8 << 12, "alpha_ppm": 500_000, "beta_ppm": 333_333, "slash_bps": 5_000,
                "payout_policy": "proportional"}  # fmt: skip
    assert rules_text(recorded, 12) == "Γ 8, α 0.5, β 0.333333, slash 50%, payout proportional"
    assert rules_text(recorded, None).startswith("Γ 32768 (fixed point), α 0.5")


def test_protocol_reads_as_the_rules_a_round_follows() -> None:
    from marketplace.task_spec import ProtocolSpec
    from marketplace.text import protocol_text

    v3 = ProtocolSpec(proof="groth16", rule_version="rffl-v3", filter_threshold="0", norm_ratio="2").to_dict()
    assert protocol_text(v3) == ("groth16 rffl-v3 · cosine filter τ 0 · norm filter k 2 · dropped updates score ≤ 0 "
                                 "· removal in every round")  # fmt: skip
    v2 = ProtocolSpec(proof="groth16", removal_rounds=10).to_dict()
    assert protocol_text(v2) == "groth16 rffl-v2 · cosine filter off · removal in rounds 1–10"
    legacy = ProtocolSpec(proof="pedersen", filters=({"name": "norm_outlier", "k": 4.0},)).to_dict()
    assert protocol_text(legacy) == "pedersen · norm_outlier (k 4.0) · removal in every round"
    fast = ProtocolSpec(proof="pedersen", norm_ratio="2").to_dict()
    assert protocol_text(fast) == ("pedersen · cosine filter off · norm filter k 2 · dropped updates score ≤ 0 "
                                   "(filters unproven) · removal in every round")  # fmt: skip
    penalised = ProtocolSpec(proof="pedersen", filters=({"name": "consistency"},), dropped_score="capped",
                             missing_score="-1/4").to_dict()  # fmt: skip
    assert protocol_text(penalised) == ("pedersen · norm filter off · dropped updates score ≤ -1/4 · missing updates "
                                        "score -1/4 · consistency · removal in every round")  # fmt: skip
    old = {"proof": "groth16", "filters": []}  # published before rule versions: proven with rffl-v1
    assert protocol_text(old).startswith("groth16 rffl-v1 · removal")
    assert protocol_text({}).startswith("none: FedAvg")


def test_task_show_writes_the_protocol_in_one_line() -> None:
    import io

    from rich.console import Console

    from client.commands.views import terms_table
    from marketplace.task_spec import ProtocolSpec

    protocol = ProtocolSpec(proof="groth16", rule_version="rffl-v3", filter_threshold="0", norm_ratio="2").to_dict()
    out = io.StringIO()
    Console(file=out, width=200).print(terms_table({"task_id": 1, "token": "ETH", "protocol": protocol}))
    assert "groth16 rffl-v3 · cosine filter τ 0 · norm filter k 2" in out.getvalue()
    assert "generator_tag" not in out.getvalue()  # not the raw table
