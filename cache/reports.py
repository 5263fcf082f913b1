"""What GC and verify did, as plain data (the CLI prints `lines()` or `asdict`)."""
from __future__ import annotations

from dataclasses import dataclass


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


@dataclass(frozen=True)
class GcReport:
    removed_blobs: int
    removed_bytes: int
    removed_entries: int
    remaining_blobs: int
    remaining_bytes: int
    pinned_blobs: int
    seconds: float
    locked_seconds: float  # how long writers had to wait

    def lines(self) -> list[str]:
        return [f"removed {self.removed_blobs} blobs ({human(self.removed_bytes)}), "
                f"{self.removed_entries} entries in {self.seconds:.2f}s "
                f"({self.locked_seconds:.2f}s locked); "
                f"store now {self.remaining_blobs} blobs ({human(self.remaining_bytes)}), "
                f"{self.pinned_blobs} pinned"]


@dataclass(frozen=True)
class Dangling:
    """An entry naming a blob that is missing or damaged."""

    key: str
    digest: str
    why: str


@dataclass(frozen=True)
class VerifyReport:
    checked_blobs: int
    checked_bytes: int
    checked_entries: int
    corrupt: tuple[str, ...]       # digests whose content does not match
    stray: tuple[str, ...]         # paths under blobs/ that cannot be blobs
    dangling: tuple[Dangling, ...]
    malformed: tuple[str, ...]     # entries/rows that are not valid JSON of the right shape
    index_fixed: int               # accounting rows corrected (derived data: not damage)
    repaired: bool
    seconds: float

    @property
    def clean(self) -> bool:
        return not (self.corrupt or self.stray or self.dangling or self.malformed)

    def lines(self) -> list[str]:
        verb = "removed " if self.repaired else ""
        out = [f"{verb}corrupt blob {d}" for d in self.corrupt]
        out += [f"{verb}stray file blobs/{p}" for p in self.stray]
        out += [f"{verb}dangling entry {x.key}: blob {x.digest} {x.why}" for x in self.dangling]
        out += [f"{verb}malformed entry {k}" for k in self.malformed]
        problems = len(self.corrupt) + len(self.stray) + len(self.dangling) + len(self.malformed)
        rate = self.checked_bytes / self.seconds / 2**20 if self.seconds > 0 else 0.0
        state = "clean" if self.clean else (f"{problems} problems repaired" if self.repaired
                                            else f"{problems} problems")
        out.append(f"verified {self.checked_blobs} blobs ({human(self.checked_bytes)}, {rate:.0f} MiB/s) "
                   f"and {self.checked_entries} entries: {state}"
                   + (f"; {self.index_fixed} accounting rows fixed" if self.index_fixed else ""))
        return out
