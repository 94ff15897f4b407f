"""Fixtures of the dossier tests (defined in testkit.dossier_data)."""

from testkit.dossier_data import built_dossiers, bundle_root, make_dossier  # noqa: F401 - fixtures
