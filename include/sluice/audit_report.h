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
 * Write the report into dir (created if missing; files replaced). The
 * journal's entries are cut into fixed pages of page_entries by position
 * (0: 500): entries 1..N are page-1.html, N+1..2N page-2.html, and so on;
 * index.html holds the newest (possibly partial) page, links to every
 * older one, and each channel's forgetting matrix (sluice_gate_history)
 * as a line plot, over all of the journal. Each page shows its entries'
 * channel moves over time, the versions proposed in it with their kind,
 * verdicts, approvals and figures, and every entry as sluice_audit_log
 * lists it. Each file is self-contained: inline CSS, JS and SVG, nothing
 * fetched. Every plotted value is also on its SVG element as data-*
 * attributes, printed as the JSON reports print it. page-K.html files
 * beyond the pages written are deleted.
 * *report: {"file","channels","versions","moves","points","entries",
 * "pages","page_entries"}.
 */
int sluice_audit_report_html(sluice_repo *repo, const char *dir, size_t page_entries,
                             char **report);

#ifdef __cplusplus
}
#endif
#endif
