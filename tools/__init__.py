"""Due-diligence tools for Chainproof: dossier format and builder, the five analyses, the scorecard and
their LangChain wrappers.

Modules: :mod:`chainproof.tools.dossier` (format, loader, bundled dossiers), :mod:`tools.dossier_builder`,
:mod:`tools.financials`, :mod:`tools.market_risk`, :mod:`tools.peers`, :mod:`tools.sentiment`,
:mod:`tools.legal`, :mod:`tools.scorecard` and :mod:`tools.registry` (``DUE_DILIGENCE_TOOLS``).
Importing this package imports nothing heavy.
"""

__all__: list[str] = []
