"""The rollup triggers of revision 0007, apart so that the revision stays readable.

Frozen with revision 0007: a later change to the rollups is a new revision with its own SQL,
never an edit here (a database migrated by 0007 has exactly this). Plain SQL text only, no
application imports, as in the revisions themselves.
"""

# ruff: noqa: S608  (the SQL here is assembled from this file's constants, never from input)

DAY = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

DAILY_SELECT = f"""
SELECT {DAY}, coalesce(prompt_slug, ''), coalesce(prompt_version, 0),
       coalesce(model_requested, ''), is_test_run, count(*),
       count(*) FILTER (WHERE status_code = 200), count(*) FILTER (WHERE status_code >= 400),
       coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),
       coalesce(sum(cost_usd), 0), count(cost_usd), coalesce(sum(latency_ms), 0)
FROM {{source}} GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
DAILY_COLUMNS = (
    "day, prompt_slug, prompt_version, model_requested, is_test_run, requests, succeeded, "
    "errors, prompt_tokens, completion_tokens, cost_usd, cost_count, latency_ms_sum"
)
DAILY_KEY = "day, prompt_slug, prompt_version, model_requested, is_test_run"
DAILY_SUMS = [
    "requests",
    "succeeded",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cost_count",
    "latency_ms_sum",
]


def _add(target: str, sign: str, sums: list[str]) -> str:
    return ", ".join(f"{c} = {target}.{c} {sign} excluded.{c}" for c in sums)


EVAL_SELECT = """
SELECT to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'),
       to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24'), i.model_requested,
       count(*), sum(e.score)
FROM {source} e JOIN request_log_ids i ON i.log_id = e.request_log_id
WHERE e.context <> 'manual' AND e.score IS NOT NULL AND i.model_requested IS NOT NULL
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
EVAL_KEY = "log_hour, eval_hour, model_requested"

SCORE_COLUMNS = (
    "day, prompt_slug, prompt_version, context, evaluator_key, evaluations, scores, "
    "score_sum, passed"
)
SCORE_KEY = "day, prompt_slug, prompt_version, context, evaluator_key"
SCORE_SUMS = ["evaluations", "scores", "score_sum", "passed"]
# The evaluations the prompt analytics read (gateway/analytics/prompts.py, `_scores`).
SCORE_SELECT = """
SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), prompt_slug,
       coalesce(prompt_version, 0), context, evaluator_key, count(*), count(score),
       coalesce(sum(score), 0), count(*) FILTER (WHERE passed IS TRUE)
FROM {source}
WHERE prompt_slug IS NOT NULL AND context <> 'manual' AND skipped IS FALSE AND error IS NULL
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""

# Sorted upserts: concurrent writers lock rollup rows in one order and cannot deadlock.
PG_TRIGGERS = f"""
CREATE FUNCTION sluice_request_logs_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO request_log_ids (request_id, log_id, created_at, model_requested)
        SELECT request_id, id, created_at, model_requested FROM new_rows;
    INSERT INTO request_log_daily AS d ({DAILY_COLUMNS})
        {DAILY_SELECT.format(source="new_rows")}
        ON CONFLICT ({DAILY_KEY}) DO UPDATE SET {_add("d", "+", DAILY_SUMS)};
    RETURN NULL;
END $$;

CREATE FUNCTION sluice_request_logs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO request_log_daily AS d ({DAILY_COLUMNS})
        {DAILY_SELECT.format(source="old_rows")}
        ON CONFLICT ({DAILY_KEY}) DO UPDATE SET {_add("d", "-", DAILY_SUMS)};
    DELETE FROM request_log_daily WHERE requests <= 0;
    DELETE FROM request_log_ids WHERE log_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION sluice_evaluations_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evaluation_model_hourly AS d
        (log_hour, eval_hour, model_requested, evaluations, score_sum)
        {EVAL_SELECT.format(source="new_rows")}
        ON CONFLICT ({EVAL_KEY}) DO UPDATE SET
            evaluations = d.evaluations + excluded.evaluations,
            score_sum = d.score_sum + excluded.score_sum;
    INSERT INTO evaluation_prompt_daily AS d ({SCORE_COLUMNS})
        {SCORE_SELECT.format(source="new_rows")}
        ON CONFLICT ({SCORE_KEY}) DO UPDATE SET {_add("d", "+", SCORE_SUMS)};
    RETURN NULL;
END $$;

CREATE FUNCTION sluice_evaluations_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evaluation_prompt_daily AS d ({SCORE_COLUMNS})
        {SCORE_SELECT.format(source="old_rows")}
        ON CONFLICT ({SCORE_KEY}) DO UPDATE SET {_add("d", "-", SCORE_SUMS)};
    DELETE FROM evaluation_prompt_daily WHERE evaluations <= 0;
    RETURN NULL;
END $$;

CREATE TRIGGER sluice_request_logs_inserted AFTER INSERT ON request_logs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_request_logs_inserted();
CREATE TRIGGER sluice_request_logs_deleted AFTER DELETE ON request_logs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_request_logs_deleted();
CREATE TRIGGER sluice_evaluations_inserted AFTER INSERT ON evaluations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_evaluations_inserted();
CREATE TRIGGER sluice_evaluations_deleted AFTER DELETE ON evaluations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION sluice_evaluations_deleted();
"""

SQLITE_ROW = (
    "substr({r}.created_at, 1, 10), coalesce({r}.prompt_slug, ''), "
    "coalesce({r}.prompt_version, 0), coalesce({r}.model_requested, ''), {r}.is_test_run, 1, "
    "{r}.status_code = 200, {r}.status_code >= 400, coalesce({r}.prompt_tokens, 0), "
    "coalesce({r}.completion_tokens, 0), coalesce({r}.cost_usd, 0), "
    "{r}.cost_usd IS NOT NULL, {r}.latency_ms"
)
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER sluice_request_logs_inserted AFTER INSERT ON request_logs BEGIN
    INSERT INTO request_log_daily ({DAILY_COLUMNS}) VALUES ({SQLITE_ROW.format(r="NEW")})
    ON CONFLICT ({DAILY_KEY}) DO UPDATE SET {_add("request_log_daily", "+", DAILY_SUMS)};
END""",
    f"""CREATE TRIGGER sluice_request_logs_deleted AFTER DELETE ON request_logs BEGIN
    INSERT INTO request_log_daily ({DAILY_COLUMNS}) VALUES ({SQLITE_ROW.format(r="OLD")})
    ON CONFLICT ({DAILY_KEY}) DO UPDATE SET {_add("request_log_daily", "-", DAILY_SUMS)};
    DELETE FROM request_log_daily WHERE requests <= 0;
END""",
    f"""CREATE TRIGGER sluice_evaluations_inserted AFTER INSERT ON evaluations
WHEN NEW.context <> 'manual' AND NEW.score IS NOT NULL BEGIN
    INSERT INTO evaluation_model_hourly (log_hour, eval_hour, model_requested, evaluations,
        score_sum)
    SELECT substr(r.created_at, 1, 13), substr(NEW.created_at, 1, 13), r.model_requested, 1,
        NEW.score
    FROM request_logs r WHERE r.id = NEW.request_log_id AND r.model_requested IS NOT NULL
    ON CONFLICT ({EVAL_KEY}) DO UPDATE SET
        evaluations = evaluation_model_hourly.evaluations + excluded.evaluations,
        score_sum = evaluation_model_hourly.score_sum + excluded.score_sum;
END""",
]

SQLITE_SCORE_ROW = (
    "substr({r}.created_at, 1, 10), {r}.prompt_slug, coalesce({r}.prompt_version, 0), "
    "{r}.context, {r}.evaluator_key, 1, {r}.score IS NOT NULL, coalesce({r}.score, 0), "
    "{r}.passed IS 1"
)
SQLITE_SCORED = (
    "{r}.prompt_slug IS NOT NULL AND {r}.context <> 'manual' AND {r}.skipped IS 0 "
    "AND {r}.error IS NULL"
)
SQLITE_TRIGGERS += [
    f"""CREATE TRIGGER sluice_evaluations_scored AFTER INSERT ON evaluations
WHEN {SQLITE_SCORED.format(r="NEW")} BEGIN
    INSERT INTO evaluation_prompt_daily ({SCORE_COLUMNS})
    VALUES ({SQLITE_SCORE_ROW.format(r="NEW")})
    ON CONFLICT ({SCORE_KEY}) DO UPDATE SET
        {_add("evaluation_prompt_daily", "+", SCORE_SUMS)};
END""",
    f"""CREATE TRIGGER sluice_evaluations_deleted AFTER DELETE ON evaluations
WHEN {SQLITE_SCORED.format(r="OLD")} BEGIN
    INSERT INTO evaluation_prompt_daily ({SCORE_COLUMNS})
    VALUES ({SQLITE_SCORE_ROW.format(r="OLD")})
    ON CONFLICT ({SCORE_KEY}) DO UPDATE SET
        {_add("evaluation_prompt_daily", "-", SCORE_SUMS)};
    DELETE FROM evaluation_prompt_daily WHERE evaluations <= 0;
END""",
]

SQLITE_FILL = [
    f"""INSERT INTO request_log_daily ({DAILY_COLUMNS})
SELECT substr(created_at, 1, 10), coalesce(prompt_slug, ''), coalesce(prompt_version, 0),
    coalesce(model_requested, ''), is_test_run, count(*), sum(status_code = 200),
    sum(status_code >= 400), coalesce(sum(prompt_tokens), 0),
    coalesce(sum(completion_tokens), 0), coalesce(sum(cost_usd), 0), count(cost_usd),
    coalesce(sum(latency_ms), 0)
FROM request_logs GROUP BY 1, 2, 3, 4, 5""",
    """INSERT INTO evaluation_model_hourly (log_hour, eval_hour, model_requested, evaluations,
    score_sum)
SELECT substr(r.created_at, 1, 13), substr(e.created_at, 1, 13), r.model_requested, count(*),
    sum(e.score)
FROM evaluations e JOIN request_logs r ON r.id = e.request_log_id
WHERE e.context <> 'manual' AND e.score IS NOT NULL AND r.model_requested IS NOT NULL
GROUP BY 1, 2, 3""",
    f"""INSERT INTO evaluation_prompt_daily ({SCORE_COLUMNS})
SELECT substr(created_at, 1, 10), prompt_slug, coalesce(prompt_version, 0), context,
    evaluator_key, count(*), count(score), coalesce(sum(score), 0), sum(passed IS 1)
FROM evaluations WHERE {SQLITE_SCORED.format(r="evaluations")}
GROUP BY 1, 2, 3, 4, 5""",
]

DROP_PG = """
DROP TRIGGER IF EXISTS sluice_evaluations_inserted ON evaluations;
DROP TRIGGER IF EXISTS sluice_evaluations_deleted ON evaluations;
DROP FUNCTION IF EXISTS sluice_evaluations_inserted(), sluice_evaluations_deleted();
"""
