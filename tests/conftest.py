import sys
from pathlib import Path

# The test helpers live beside the tests; p2pview itself is imported from the
# installed package, so that CI exercises what pip installed.
sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"
