"""Progress bars of the command line (on stderr, so that stdout stays the result)."""
import sys

from tqdm import tqdm

LOG_REDRAW_S = 10  # into a log file (not a terminal), at most one redraw per this many seconds


class ProgressBar(tqdm):
    """A tqdm bar on stderr, counting episodes. Into a log file, where every redraw is appended,
    it is redrawn at most every ``LOG_REDRAW_S`` (a redraw per episode buried the result), and
    its last line comes once: close() draws it only if the last redraw showed something else."""

    def __init__(self, total, desc):
        self.into_log = not sys.stderr.isatty()
        self._drawn = None  # (count, postfix) of the last line drawn
        self._closing = False
        # Into a log, a redraw only at an update (miniters 1): tqdm's monitor thread redraws a bar whose
        # adaptive miniters grew and that waits, and drew the completed one before close() drew it again.
        super().__init__(total=total, desc=desc, unit="ep", file=sys.stderr, dynamic_ncols=True,
                         mininterval=LOG_REDRAW_S if self.into_log else 0.5,
                         miniters=1 if self.into_log else None)

    def display(self, msg=None, pos=None):
        shown = (self.n, self.postfix)
        if self._closing and self.into_log and shown == self._drawn:
            return True  # already the last line: close() adds only its newline
        self._drawn = shown
        return super().display(msg, pos)

    def close(self):
        self._closing = True
        super().close()

    def tick(self, n=1, **postfix):
        """Counts ``n`` more episodes. Into a log file, the count that completes the bar is drawn by
        close() alone: a bar completed at a "running" status closes at the next ("finished")."""
        if postfix:
            self.set_postfix(postfix, refresh=False)  # drawn by the update, within the bar's interval
        if self.into_log and self.total and self.n + n >= self.total:
            self.n += n
        else:
            self.update(n)
