"""Due-diligence tools for Chainproof: dossier format and builder, the five analyses, the scorecard and
their LangChain wrappers.

Modules: :mod:`chainproof.tools.dossier` (format, loader, bundled dossiers), :mod:`chainproof.tools.dossier_builder`,
:mod:`chainproof.tools.financials`, :mod:`chainproof.tools.market_risk`, :mod:`chainproof.tools.peers`, :mod:`chainproof.tools.sentiment`,
:mod:`chainproof.tools.legal`, :mod:`chainproof.tools.scorecard` and :mod:`chainproof.tools.registry` (``DUE_DILIGENCE_TOOLS``).
Importing this package imports nothing heavy.
"""

__all__: list[str] = []
