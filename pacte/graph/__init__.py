"""The graph: model, policy, consent, the purpose-bound session, and the stores."""
