/* Board labels in English and Chinese: the browser's language picks, the header switch overrides
   (remembered in localStorage). Sentences the hub writes (alert suggestions, the wait in words) come
   from its message catalogue in every language (alert.texts, queue wait_text): the board picks. */
"use strict";
const I18N = (() => {
  const T = {
    en: {
      login_title: "Duty manager's board", user: "User", password: "Password", sign_in: "Sign in",
      login_failed: "Wrong user or password.", login_throttled: "Too many failed attempts: wait a few minutes.",
      logout: "Log out", connecting: "connecting",
      live: "live", reconnecting: "reconnecting…", hall: "Hall", queues: "Queues", alerts: "Alerts",
      service: "Service", tickets_waiting: "Tickets waiting", people_waiting: "People waiting",
      open_counters: "Open counters", predicted_wait: "Predicted wait", cell: "Cell", no_data: "no data",
      no_alerts: "No active alerts", acknowledge: "Acknowledge", resolve: "Resolve", ack_by: "acknowledged by",
      resolved_by: "resolved by", owner: "owner", ago: "ago", now: "just now", none: "none",
      cameras: "Cameras", ticket_feed: "Ticket feed", viewer: "viewer",
      duty_manager: "duty manager", last_hour: "last hour", escalated: "escalated",
      open: "open", acknowledged: "acknowledged", resolved: "resolved",
      info: "info", warning: "warning", critical: "critical",
      forecast_shortfall: "Counters short ahead",
      long_wait: "Long wait", over_capacity: "Over capacity", entrance_crowd: "Crowd at entrance",
      staff_missing: "Staff missing", self_service_queue: "Self-service queue", vip_waiting: "VIP waiting",
      stale_camera: "Camera silent", stale_tickets: "Ticket feed silent",
      entrance: "entrance", lobby_desk: "lobby desk", ticket_kiosk: "ticket kiosk", waiting: "waiting",
      counter: "counter", self_service: "self-service", vip: "VIP", other: "other",
      min: "min", s: "s",
      fig_waiting_tickets: "tickets", fig_waiting_people: "people", fig_service_time_s: "service time",
      fig_arrivals_per_h: "arrivals/h", fig_oldest_wait_s: "longest wait", fig_suggested_counter: "suggested counter",
      fig_count: "count", fig_capacity: "capacity", fig_explained: "explained by tickets", fig_age_s: "silent for",
      fig_status: "status", fig_camera: "camera",
    },
    zh: {
      login_title: "值班经理看板", user: "用户名", password: "密码", sign_in: "登录",
      login_failed: "用户名或密码错误。", login_throttled: "失败次数过多，请几分钟后再试。",
      logout: "退出", connecting: "连接中",
      live: "实时", reconnecting: "重新连接…", hall: "营业厅", queues: "排队", alerts: "预警",
      service: "业务", tickets_waiting: "等候票号", people_waiting: "等候人数",
      open_counters: "开放柜台", predicted_wait: "预计等候", cell: "网格", no_data: "无数据",
      no_alerts: "当前无预警", acknowledge: "确认", resolve: "解除", ack_by: "确认人",
      resolved_by: "解除人", owner: "责任网格", ago: "前", now: "刚刚", none: "无",
      cameras: "摄像头", ticket_feed: "排队叫号数据", viewer: "查看者",
      duty_manager: "值班经理", last_hour: "近一小时", escalated: "已升级",
      open: "待处理", acknowledged: "已确认", resolved: "已解除",
      info: "提示", warning: "警告", critical: "严重",
      forecast_shortfall: "窗口预计不足",
      long_wait: "等候过长", over_capacity: "超出容量", entrance_crowd: "入口拥挤",
      staff_missing: "柜台无人", self_service_queue: "自助区排队", vip_waiting: "VIP 等候",
      stale_camera: "摄像头无数据", stale_tickets: "叫号数据中断",
      entrance: "入口", lobby_desk: "大堂经理台", ticket_kiosk: "取号机", waiting: "等候区",
      counter: "柜台", self_service: "自助区", vip: "VIP", other: "其他",
      min: "分钟", s: "秒",
      fig_waiting_tickets: "等候票号", fig_waiting_people: "等候人数", fig_service_time_s: "平均办理",
      fig_arrivals_per_h: "每小时取号", fig_oldest_wait_s: "最长等候", fig_suggested_counter: "建议开启",
      fig_count: "人数", fig_capacity: "容量", fig_explained: "取号可解释", fig_age_s: "无数据时长",
      fig_status: "状态", fig_camera: "摄像头",
    },
  };
  let lang = localStorage.getItem("hallgrid.lang") ||
    ((navigator.languages || [navigator.language || "en"]).some((l) => l.toLowerCase().startsWith("zh")) ? "zh" : "en");
  const t = (key) => (T[lang] && T[lang][key]) || T.en[key] || key;
  function apply(root) {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  }
  function set(value) { lang = value; localStorage.setItem("hallgrid.lang", value); apply(document); }
  return { t, apply, set, get lang() { return lang; } };
})();
