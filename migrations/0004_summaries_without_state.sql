-- course_summaries keeps the columns staff filter and sort by, not a copy of the whole course.
-- The full state (about 3 KB of JSON) was rewritten, with its TOAST chunks, on every append: it
-- doubled the write volume of a step. The event store now folds from its own cache, or on a miss
-- from the stream itself, so nothing reads it.
ALTER TABLE course_summaries DROP COLUMN IF EXISTS state;
