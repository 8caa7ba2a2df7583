"""moka-py: a fast, thread-safe in-memory cache backed by the Rust moka crate."""

from moka_py._moka_py import VERSION, Moka

__version__ = VERSION
__all__ = ["VERSION", "Moka", "__version__"]
