"""Progress bars of the command line (on stderr, so that stdout stays the result)."""
import sys

LOG_REDRAW_S = 10  # into a log file (not a terminal), at most one redraw per this many seconds


def progress_bar(total, desc):
    """A tqdm bar on stderr, counting episodes. Into a log file it is redrawn at most every
    ``LOG_REDRAW_S``: each redraw is appended there, and a redraw per episode buried the result."""
    from tqdm import tqdm
    into_log = not sys.stderr.isatty()
    # Into a log, a redraw only at an update (miniters 1): tqdm's monitor thread redraws a bar whose
    # adaptive miniters grew and that waits, and drew the completed one before close() drew it again.
    bar = tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, dynamic_ncols=True,
               mininterval=LOG_REDRAW_S if into_log else 0.5, miniters=1 if into_log else None)
    bar.into_log = into_log
    return bar


def tick(bar, n=1, last=False, **postfix):
    """Counts ``n`` more episodes. The ``last`` count, and into a log file the one that completes
    the bar, is drawn by close() alone: a redraw there and close()'s own gave the last line twice."""
    if postfix:
        bar.set_postfix(postfix, refresh=False)  # drawn by the update, within the bar's interval
    if last or (bar.into_log and bar.total and bar.n + n >= bar.total):
        bar.n += n
    else:
        bar.update(n)
