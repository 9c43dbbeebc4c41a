"""pgolf: compliance auditor and evaluator for OpenAI's Parameter Golf challenge."""
__version__ = "0.1.0"
