"""Approval-gated tools: each declares its preview when it registers and runs through one run-once skeleton
(`base.run_once`) that records it in the outbox and delivers it exactly once."""
