"""The dashboard's HTML pages beyond the overview: tasks, clips, jobs, search and the forms.

Every page is rendered on the server and every action is a POST form carrying the session's
CSRF token, so the dashboard works without JavaScript; ``static/dashboard.js`` only refreshes
the overview's live panels and draws its charts.
"""
