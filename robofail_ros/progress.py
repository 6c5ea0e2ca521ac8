"""Progress bars of the command line (on stderr, so that stdout stays the result)."""
import sys


def progress_bar(total, desc):
    """A tqdm bar on stderr, counting episodes. Into a log file (not a terminal) it is redrawn at
    most every 10 s: each redraw is appended there, and a redraw per episode buried the result."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 10)


def tick(bar, n=1, **postfix):
    if postfix:
        bar.set_postfix(postfix, refresh=False)  # drawn by the update, within the bar's interval
    bar.update(n)
