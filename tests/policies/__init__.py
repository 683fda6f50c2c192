"""Tests of policies/: the policy model, the ladder, interest, credit, discounts, rate tables."""
