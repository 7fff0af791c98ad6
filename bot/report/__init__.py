"""`escbot report`: the workflow's figures over a window (CONTRACTS §14), from the audit
log, the escalations and the signals; text, JSON or one self-contained HTML file."""

from bot.report.figures import Report, build_report
from bot.report.sources import ReportData, read_report_data

__all__ = ["Report", "ReportData", "build_report", "read_report_data"]
