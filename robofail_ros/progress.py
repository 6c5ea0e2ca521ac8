"""Progress bars of the command line (on stderr, so that stdout stays the result)."""
import sys

LOG_REDRAW_S = 10  # into a log file (not a terminal), at most one redraw per this many seconds


def progress_bar(total, desc):
    """A tqdm bar on stderr, counting episodes. Into a log file it is redrawn at most every
    ``LOG_REDRAW_S``: each redraw is appended there, and a redraw per episode buried the result."""
    from tqdm import tqdm
    into_log = not sys.stderr.isatty()
    bar = tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, dynamic_ncols=True,
               mininterval=LOG_REDRAW_S if into_log else 0.5)
    bar.into_log = into_log
    return bar


def tick(bar, n=1, **postfix):
    """Counts ``n`` more episodes. Into a log file the step that completes the bar is drawn by
    close() alone: a redraw at the total and close()'s own gave the last line twice."""
    if postfix:
        bar.set_postfix(postfix, refresh=False)  # drawn by the update, within the bar's interval
    if bar.into_log and bar.total and bar.n + n >= bar.total:
        bar.n += n
    else:
        bar.update(n)
