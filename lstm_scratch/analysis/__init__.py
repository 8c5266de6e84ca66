"""The paper's results section from study files (SPEC §8): :mod:`.table` (a study → definition and
DataFrame), :mod:`.stats` (Welch on the best 10 %), :mod:`.importance` (fANOVA), :mod:`.figures`
(Figures 3–6; the only matplotlib importer), :mod:`.cost` (the core-hours and where they went),
:mod:`.report` (HTML + Markdown + CSV), :mod:`.jzs_table` (JZS's Table 1 from a benchmark). Reads files
only: no trial is trained, no kernel compiled. Submodules are imported on use (matplotlib and
scikit-learn load only when needed)."""
