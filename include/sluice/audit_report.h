/*
 * sluice/audit_report.h - a report people can read: one self-contained
 * static HTML page of the journal (docs/audit-report.md).
 */
#ifndef SLUICE_AUDIT_REPORT_H
#define SLUICE_AUDIT_REPORT_H

#include "sluice/repo.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Write dir/index.html (dir created if missing; the file replaced): every
 * channel's moves over time, every proposed version with its kind,
 * verdicts, approvals and figures, and each channel's forgetting matrix
 * (sluice_gate_history) as a line plot. One file, inline CSS, JS and SVG,
 * nothing fetched. Every plotted value is also on its SVG element as
 * data-* attributes, printed as the JSON reports print it.
 * *report: {"file","channels","versions","moves","points"}.
 */
int sluice_audit_report_html(sluice_repo *repo, const char *dir, char **report);

#ifdef __cplusplus
}
#endif
#endif
