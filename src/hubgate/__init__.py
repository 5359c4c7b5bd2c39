"""hubgate: organization single sign-on and access control for ML model platforms."""

__version__ = "0.1.0"
