"""Chainproof's trust features for the support-desk graph; graph.py stays as it is."""

import chainproof
from support_desk.graph import builder

graph = chainproof.instrument(builder, name="support-reply", efforts={"draft": "low"},
                              goal="Answer the customer's ticket with a reply a person approved.")
