"""Errors every role can raise, so the CLI can print one clear line and a next step."""

from __future__ import annotations


class FedmarketError(Exception):
    """Base of every error fedmarket raises on purpose; the CLI prints it without a traceback."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.hint})" if self.hint else text


class UpdateFormatError(FedmarketError):
    """A model update or model file is malformed: wrong shape, dtype, size, range, NaN/inf."""


class DecryptionError(FedmarketError):
    """A sealed update could not be opened with the aggregator's key."""


class CommitmentMismatchError(FedmarketError):
    """Content fetched from IPFS does not match the commitment recorded on chain."""


class DataSchemaError(FedmarketError):
    """A data file does not match the task's data schema."""


class ServiceUnavailableError(FedmarketError):
    """The chain or the IPFS node failed us (refused the connection, timed out, broke off) instead of answering:
    nothing is known about the request's effect or the content, so callers wait and try again, and never judge
    a data owner, an aggregator or a round by it."""


class OutageTooLongError(FedmarketError):
    """The chain or the IPFS node stayed unavailable longer than the caller agreed to wait (--give-up-after):
    the work stops with nothing judged, and a restart resumes it."""

    def __init__(self, seconds: float, cause: ServiceUnavailableError) -> None:
        super().__init__(f"gave up after {seconds:.0f} s without an answer: {cause}",
                         hint="nothing was judged or lost; start it again once the service is back")  # fmt: skip


class IpfsError(FedmarketError):
    """The IPFS node is unreachable, refused a request, or does not hold a CID."""


class ChainError(FedmarketError):
    """The chain is unreachable or answered something unexpected."""


class ContractRevert(ChainError):
    """A contract call reverted; `error_name` and `args` hold the decoded custom error."""

    def __init__(self, error_name: str, args: dict[str, object], message: str = "") -> None:
        self.error_name = error_name
        self.error_args = args
        detail = ", ".join(f"{k}={v}" for k, v in args.items())
        super().__init__(message or f"contract reverted with {error_name}({detail})")


class ToolchainError(FedmarketError):
    """A local tool (Anvil, the IPFS node, the compiler) is missing or failed to start."""
