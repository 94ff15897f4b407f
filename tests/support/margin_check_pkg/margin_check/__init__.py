"""margin-check: a small Chainproof graph that checks a product's gross margin against a target."""
