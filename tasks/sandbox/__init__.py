"""Running untrusted, model-written Python: a kernel sandbox and a judge outside it.

* :mod:`pathbench.tasks.sandbox.isolation`: bubblewrap (the candidate sees only its interpreter,
  :mod:`pathbench.tasks.sandbox.mounts`; sized tmpfs work dir, /tmp, /dev/shm; no network; own PID/IPC/UTS
  namespaces; an unprivileged host uid; no capabilities; :mod:`pathbench.tasks.sandbox.seccomp`),
  detected once; the in-process guard as a loud fallback (an error on a cluster, or when
  ``isolation="bwrap"``); :mod:`pathbench.tasks.sandbox.cleanup` removes a run's folder whatever it holds.
* :mod:`pathbench.tasks.sandbox.judge`: the scoring path. Tests run in a trusted judge process that
  calls the candidate's functions in the sandbox over pipes and receives plain literals.
* :mod:`pathbench.tasks.sandbox.runner`: a whole program (solution + tests) in the sandbox, for the
  problems the judge cannot express (its pass can be forged by code that sets out to).

The threat model (what is and is not defended) is docs/sandbox.md and is what
``tests/tasks/test_sandbox_hostile.py`` and ``test_sandbox_bounds.py`` check.
"""

from pathbench.tasks.sandbox.isolation import absent_defences, bwrap_problem, resolve
from pathbench.tasks.sandbox.judge import JudgeJob, entry_points, run_job, run_jobs, run_judged, run_judged_many
from pathbench.tasks.sandbox.limits import ISOLATIONS, STATUSES, ExecResult, SandboxLimits, allocated_cpus
from pathbench.tasks.sandbox.runner import run_program, run_programs

__all__ = ["ISOLATIONS", "absent_defences", "STATUSES", "ExecResult", "JudgeJob", "SandboxLimits", "allocated_cpus", "bwrap_problem",
           "entry_points", "resolve", "run_job", "run_jobs", "run_judged", "run_judged_many", "run_program",
           "run_programs"]
