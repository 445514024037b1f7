"""Pytest set-up shared by the unit tests and the notebook runs (nbval)."""

import nbval.plugin

# nbval waits at most 5 s between two output messages of a cell that has already
# replied. On a busy 2-core machine a kernel that just finished a long training
# cell can take longer to flush its progress bars, which nbval would report as
# a failed cell. Give it two minutes instead; cell run time is still bounded by
# --nbval-cell-timeout.
_OUTPUT_TIMEOUT_S = 120
_original_init = nbval.plugin.IPyNbCell.__init__


def _init_with_patient_output(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.output_timeout = _OUTPUT_TIMEOUT_S


nbval.plugin.IPyNbCell.__init__ = _init_with_patient_output
