/* Detections page: what every part of the page shares — the table's columns, labels and colours, and the
 * page state (sort, paging, selection, the open detection, the offense filter). */

import {formatTime, tag} from "../common.js";

export const $ = (id) => document.getElementById(id);

export const WINDOW_MS = {"1h": 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3, "30d": 30 * 24 * 3600e3};
export const TRIAGE_LABELS = {new: "New", investigating: "Investigating", benign: "Benign – expected",
  malicious: "Malicious", escalated: "Escalated"};
export const TRIAGE_COLORS = {new: "blue", investigating: "purple", benign: "green", malicious: "red",
  escalated: "magenta"};
export const PLATFORM_COLORS = {"AWS": "warm-gray", "Azure AD": "blue", "Office 365": "cyan", "GCP": "teal", "Google Workspace": "green"};

export function chainLabel(d) {
  return (d.chain_kind ? String(d.chain_kind).replace(/_/g, " ") : "chain") + " #" + d.chain_id;
}

// The visible columns: key (API field, and sort key when sortable), header, how to render a cell.
// Sortable = the detection API's sort whitelist (app/store/detections.py SORT_COLUMNS).
export const SORTABLE = new Set(["event_time", "actor", "target_account", "cloud_platform", "triage_status"]);
export const COLUMNS = [
  // The event's own time (devicetime); the receipt time (starttime, what the list sorts by) stands in
  // when QRadar has none. The detail panel shows both.
  {key: "event_time", label: "Time", render: (d) => formatTime(d.device_time || d.event_time)},
  {key: "event_category", label: "Category", render: (d) => d.event_category || d.event_name},
  {key: "log_source", label: "Log source"},
  {key: "actor", label: "Actor"},
  {key: "target_account", label: "Target account"},
  {key: "source_ip", label: "Source IP"},
  {key: "cloud_platform", label: "Cloud platform",
    render: (d) => d.cloud_platform ? tag(d.cloud_platform, PLATFORM_COLORS[d.cloud_platform]) : ""},
  {key: "is_service_account", label: "Service account",
    render: (d) => d.is_service_account ? tag("Service account", "purple") : "No"},
  {key: "chain_id", label: "Chain",
    render: (d) => d.chain_id ? tag(chainLabel(d), "red", "Part of an attack chain") : ""},
  {key: "triage_status", label: "Triage",
    render: (d) => tag(TRIAGE_LABELS[d.triage_status] || d.triage_status || "New",
      TRIAGE_COLORS[d.triage_status] || "gray")},
];

export const state = {
  sort: "-event_time", limit: 50, offset: 0, total: 0, items: [], selected: new Set(), openId: null,
  offense: null,  // /tab/?offense=<id>: only that QRadar offense's detections (a removable chip)
};
