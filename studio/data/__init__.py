"""Market data: the bar panel, data sources (synthetic market, imported bars), windows, labels,
normalisation, splits and cross-section batches. numpy and pandas; no torch, no Qt."""
