"""ftops: GitOps for OpenAI fine-tuning."""

__version__ = "0.1.0"
