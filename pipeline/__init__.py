"""The application layer: the Explainer pipeline, the Explanation it returns, batch annotation of a
case file, and the study store. It composes the stages below it (extraction, clustering,
evaluation, agent) and is what the CLI, the app and the front door (`import attnlens`) call."""
