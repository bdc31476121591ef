"""A deterministic demo TS24 site: legacy database, attachment folder, new-system side, truth file.

Example::

    from ts24_migrate.demo import generate_site, advance_site, DemoTruth
    truth = generate_site(legacy_engine, Path("files"), target=target_engine, seed=42, scale=0.05)
    truth.write(Path("demo.truth.json"))
    step = advance_site(legacy_engine, target_engine, Path("files"), days=7, seed=1)
"""

from .advance import AdvanceTruth, advance_site
from .generator import generate_site
from .truth import DemoTruth

__all__ = ["generate_site", "DemoTruth", "advance_site", "AdvanceTruth"]
