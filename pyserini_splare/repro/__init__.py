"""Two-click reproductions (2CR): reproduction matrices as data, a runner that grades them, an HTML report.

:mod:`.schema` (the YAML matrix), :mod:`.templating`, :mod:`.runner`, :mod:`.grading`, :mod:`.report`;
see docs/2cr.md.
"""

from .grading import FAIL, MEASURED, NOT_RUN, OK, OKISH, grade
from .runner import RESULTS_FILE, Result, load_results, run_conditions, save_results
from .schema import MATRIX_DIR, Condition, Matrix, Step, list_matrices, load_matrix
from .templating import Plan, auto_variables, command_argv, eval_command, plan, plan_work, render

__all__ = ["Matrix", "Condition", "Step", "Plan", "Result", "load_matrix", "list_matrices", "plan", "plan_work",
           "render", "command_argv", "eval_command", "grade", "run_conditions", "save_results", "load_results",
           "auto_variables", "MATRIX_DIR", "RESULTS_FILE", "OK", "OKISH", "FAIL", "NOT_RUN", "MEASURED"]
