"""Knowledge checks: one question a digest, spaced repetition, answers that only a POST records."""

from service.quiz.answering import AnswerResult, Asking, find_asking, kept_answer, record_answer
from service.quiz.asking import asked_before, question_catalogue, tips_of
from service.quiz.schedule import Asked, next_question, tips_to_revisit

__all__ = ["AnswerResult", "Asking", "find_asking", "kept_answer", "record_answer", "Asked", "asked_before", "next_question", "question_catalogue", "tips_of", "tips_to_revisit"]
