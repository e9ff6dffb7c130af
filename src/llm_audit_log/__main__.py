"""``python -m llm_audit_log`` runs the ``llm-audit`` command."""

import sys

from llm_audit_log._cli import main

sys.exit(main())
