"""Reports: figures computed in SQL (:mod:`.figures`), knowledge checks (:mod:`.questions`), the
weekly supervisor summary (:mod:`.summaries`) and CSV exports (:mod:`.exports`)."""

from service.reports.figures import (
    ATTENTION, DELIVERY_PROBLEM, Tally, has_managers, tally, team_tallies, STATUS_ORDER, NoticeProgress, PersonEngagement, Status, TrendPoint, engagement,
    last_weeks, notice_progress, since_first_digest, status_summary, subtree, team_of, undeliverable_people,
    week_bounds, weekly_trend, Window,
)
from service.reports.questions import (
    QUESTION_COLUMNS, QuestionFigures, SectionFigures, most_misunderstood, question_figures, question_rows,
    section_figures, sections_of,
)
from service.reports.summaries import SummaryResult, compose_summaries, knowledge_checks, summary_payload
from service.reports.exports import (
    DELIVERY_COLUMNS, ENGAGEMENT_COLUMNS, csv_chunks, delivery_rows, engagement_rows, notice_counts, notice_people, write_csv,
)

__all__ = [
    "QUESTION_COLUMNS", "QuestionFigures", "SectionFigures", "most_misunderstood", "question_figures", "question_rows",
    "section_figures", "sections_of", "knowledge_checks",
    "Tally", "has_managers", "tally", "team_tallies",
    "ATTENTION", "DELIVERY_COLUMNS", "DELIVERY_PROBLEM", "ENGAGEMENT_COLUMNS", "NoticeProgress",
    "PersonEngagement", "STATUS_ORDER", "Status", "SummaryResult", "TrendPoint", "compose_summaries",
    "csv_chunks", "delivery_rows", "engagement", "engagement_rows", "last_weeks", "notice_counts", "notice_people",
    "notice_progress", "since_first_digest", "status_summary", "subtree", "summary_payload", "team_of",
    "undeliverable_people", "week_bounds", "weekly_trend", "Window", "write_csv",
]
