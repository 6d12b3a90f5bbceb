"""Release gates of Lab 04: plausible wrong implementations of each exercise (`WRONG`: each must lose its
points) and, for each exercise, a wrapper around the library's twin in the thinnest disguise (`WRAPPERS`:
a right answer that must score 0)."""

WRONG = {
    ("04_search_space", "fit_stats"): {
        "mean MACs over all sampled subnets, not the fitting ones": """
def fit_stats(costs, sram, flash):
    fitting = [c.macs for c in costs if c.sram <= sram and c.flash <= flash]
    return len(fitting) / len(costs), (sum(fitting) / len(costs) if fitting else 0.0)
""",
        "a subnet exactly at the budget does not fit":
            ("c.sram <= sram and c.flash <= flash", "c.sram < sram and c.flash < flash"),
        "ignores Flash": ("c.sram <= sram and c.flash <= flash", "c.sram <= sram"),
    },
    ("04_search_space", "choose_space"): {
        "the space where the most subnets fit":
            ("best = max(usable, key=lambda s: s.mean_macs)", "best = max(usable, key=lambda s: s.fit_fraction)"),
        "ignores min_fit": ("usable = [s for s in spaces if s.fit_fraction >= min_fit]", "usable = list(spaces)"),
        "needs strictly more than min_fit": ("s.fit_fraction >= min_fit", "s.fit_fraction > min_fit"),
        "mean MACs over all samples (fitting or not)":
            ("key=lambda s: s.mean_macs", "key=lambda s: s.mean_macs * s.fit_fraction"),
    },
    ("04_search_space", "largest_resolution_for"): {
        "the largest subnet must fit": ("c = ss.cost(smallest(width, r))", "c = ss.cost(largest(width, r))"),
        "the smallest fitting resolution": ("            found = r\n", "            found = found or r\n"),
        "ignores Flash": ("if c.sram <= sram and c.flash <= flash:", "if c.sram <= sram:"),
    },
}

WRAPPERS = {
    ("04_search_space", "fit_stats"): """
def fit_stats(costs, sram, flash):
    s = ss.SpaceStats(0.0, 0, len(costs), [c.macs for c in costs if c.sram <= sram and c.flash <= flash])
    return s.fit_fraction, s.mean_macs
""",
    ("04_search_space", "choose_space"): "choose_space = lab04.choose_space_reference",
    ("04_search_space", "largest_resolution_for"): """
def largest_resolution_for(width, sram, flash): return lab04.largest_resolution_for_reference(width, sram, flash)
""",
}
