"""python -m optsweep.study [NAME] [overrides...]: runs the stages of conf/study/NAME.yaml
(default: `default`; or a path to a study YAML), each a sweep in <study dir>/<stage>.

Overrides go to every stage's `train.py -m` (hydra/launcher=basic, data.train_size=3000, ...),
except `study.<key>=<value>`, which change the study YAML itself: study.dir=<dir> (default
<paths.log_dir>/studies/NAME), study.stages.<stage>.grid.<key>=[...], ...
Running the same command again skips the stages that are done and resumes the interrupted one.
"""

import sys

from optsweep.errors import UserError, exit_with
from optsweep.study.run import run_study


def main(argv: list[str]) -> None:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    name, args = (argv[0], argv[1:]) if argv and "=" not in argv[0] else ("default", argv)
    try:
        run_study(name, args)
    except UserError as err:
        exit_with(err)


if __name__ == "__main__":
    main(sys.argv[1:])
