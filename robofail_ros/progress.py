"""Progress bars of the command line (on stderr, so that stdout stays the result)."""
import sys


def progress_bar(total, desc):
    """A tqdm bar on stderr, counting episodes."""
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr, dynamic_ncols=True)


def tick(bar, n=1, **postfix):
    bar.update(n)
    if postfix:
        bar.set_postfix(postfix)
