"""Not a package to install: gives test modules unique names (services.<svc>.tests...) in one pytest run."""
