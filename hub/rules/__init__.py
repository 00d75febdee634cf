"""Local automations: rules, their triggers, conditions and actions."""
