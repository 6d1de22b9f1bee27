"""``npconv data``: the data directory in use and the data sets found there (checksums verified)."""

from __future__ import annotations

HELP_ORDER = 60


def add_parser(commands, common) -> None:
    data = commands.add_parser(
        "data", parents=[common], aliases=["datasets"], help="the data directory and the data sets found there"
    )
    data.set_defaults(func=run)


def run(args) -> int:
    from ..apps.datasets import NAMED
    from ..data import data_dir, find_file, verify

    root = data_dir(args.data_dir)
    print(
        f"data directory: {root} ({'found' if root.is_dir() else 'missing'}; set NPCONV_DATA or "
        "--data-dir to change it)"
    )
    files = ["train_happy.h5", "test_happy.h5", "train_signs.h5", "test_signs.h5"]
    for name in files:
        try:
            path = find_file(name, args.data_dir)
        except FileNotFoundError:
            print(f"  {name:22s} not found")
            continue
        print(f"  {name:22s} {verify(path)}")
    for target in NAMED.values():
        if target.endswith(".h5"):
            continue
        folder = root / target
        if not folder.is_dir():
            print(f"  {target + '/':22s} not found")
            continue
        counts = {
            c.name: sum(1 for f in c.iterdir() if f.is_file() and not f.name.startswith("."))
            for c in sorted(folder.iterdir())
            if c.is_dir() and not c.name.startswith(".")
        }
        listing = ", ".join(f"{c} {n}" for c, n in counts.items())
        print(f"  {target + '/':22s} {sum(counts.values())} images in {len(counts)} classes ({listing})")
    print("  builtin:smiles         synthetic cartoon faces, always available")
    return 0
