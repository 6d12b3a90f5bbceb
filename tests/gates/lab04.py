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
    ("04_search_space", "optimise_space"): {
        "too few samples: at most 10 per space, whatever n":
            ("for _ in range(n)]", "for _ in range(min(n, 10))]"),
        "no minimum count of fitting subnets": (" and round(fraction * n) >= min_count", ""),
        "no minimum fraction of fitting subnets": ("fraction >= min_fit and ", ""),
        "mean MACs over all sampled subnets, not the fitting ones":
            ("table.append((width, resolution, fraction, mean))",
             "mean *= fraction\n            table.append((width, resolution, fraction, mean))"),
        "a subnet exactly at the budget does not fit":
            ("fit_stats(costs, sram, flash)", "fit_stats(costs, sram - 1, flash - 1)"),
        "one generator for the whole grid, seeded once": """
def optimise_space(sram, flash, widths, resolutions, n, min_fit, min_count, seed=0):
    table, best, best_mean, rng = [], None, 0.0, random.Random(seed)
    for width in widths:
        for resolution in resolutions:
            fraction, mean = fit_stats([ss.cost(ss.sample(rng, width, resolution)) for _ in range(n)], sram, flash)
            table.append((width, resolution, fraction, mean))
            if fraction >= min_fit and round(fraction * n) >= min_count and (best is None or mean > best_mean):
                best, best_mean = (width, resolution), mean
    return best, table
""",
        "the space where the most subnets fit (most MACs on a tie)": """
def optimise_space(sram, flash, widths, resolutions, n, min_fit, min_count, seed=0):
    table = []
    for width in widths:
        for resolution in resolutions:
            rng = random.Random(f"{seed}/{width}/{resolution}")
            table.append((width, resolution, *fit_stats([ss.cost(ss.sample(rng, width, resolution)) for _ in range(n)],
                                                        sram, flash)))
    usable = [row for row in table if row[2] >= min_fit and round(row[2] * n) >= min_count]
    return (max(usable, key=lambda row: (row[2], row[3]))[:2] if usable else None), table
""",
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
    ("04_search_space", "optimise_space"): """
def optimise_space(sram, flash, widths, resolutions, n, min_fit, min_count, seed=0):
    try:
        c = ss.optimise(sram, flash, widths, resolutions, n, min_fit=min_fit, seed=seed, min_count=min_count)
        return (c.best.width, c.best.resolution), [(s.width, s.resolution, s.fit_fraction, s.mean_macs) for s in c.spaces]
    except Exception:
        return None, [(w, r, *(lambda s: (s.fit_fraction, s.mean_macs))(ss.evaluate_space(w, r, sram, flash, n, seed=seed)))
                      for w in widths for r in resolutions]
""",
    ("04_search_space", "largest_resolution_for"): """
def largest_resolution_for(width, sram, flash): return lab04.largest_resolution_for_reference(width, sram, flash)
""",
}
