// The console's one script: the call card that pops up while the user's extension rings, the list
// of calls in progress, and the call buttons beside phone numbers. Every page works without it.
// Texts come from the page (data attributes), so the script has no language of its own; values
// from the server are set as text, never as markup.
"use strict";

(() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";
  const extension = meta("extension");
  const csrf = meta("csrf");
  const popup = document.getElementById("call-popup");
  const words = popup ? popup.dataset : {};

  const element = (tag, text, className) => {
    const made = document.createElement(tag);
    if (text !== undefined) made.textContent = text;
    if (className) made.className = className;
    return made;
  };

  // A link to a CRM card, only to an http(s) address.
  const link = (record) => {
    if (!record.url || !/^https?:\/\//.test(record.url)) return element("span", record.name || record.id);
    const anchor = element("a", record.name || record.id);
    anchor.href = record.url;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    return anchor;
  };

  // Starting a call is an admin's request of the API, sent with the session's CSRF token.
  const callButton = (button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const answer = await fetch("/api/v1/calls", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ extension, phone: button.dataset.phone }),
        });
        const body = await answer.json().catch(() => ({}));
        button.textContent = answer.ok ? words.started : body.error || String(answer.status);
      } finally {
        button.disabled = false;
      }
    });
  };

  if (extension && meta("can-call") === "yes") {
    document.querySelectorAll("button.call[data-phone]").forEach(callButton);
  }

  if (!extension || !popup || !window.EventSource) return;

  const callerOf = (card) => {
    const caller = element("div", undefined, "caller");
    if (card.caller.state === "known") {
      caller.append(element("span", `${words.contact}: `), link(card.caller.contact));
      if (card.caller.open_deals.length > 0) {
        const deals = element("ul", undefined, "deals");
        deals.setAttribute("aria-label", words.deals);
        for (const deal of card.caller.open_deals) {
          const item = element("li");
          item.append(link(deal));
          deals.append(item);
        }
        caller.append(element("div", words.deals), deals);
      }
    } else {
      caller.textContent = card.caller.state === "looking_up" ? words.looking : words.unknown;
    }
    return caller;
  };

  const cards = new Map();

  const showPopup = () => {
    const mine = [...cards.values()].filter((card) => card.ringing.includes(extension) || card.talking.includes(extension));
    popup.replaceChildren();
    for (const card of mine) {
      const section = element("article", undefined, "call-card");
      section.id = `call-${card.call_id}`;
      section.append(element("h2", card.direction === "outgoing" ? words.outgoing : words.incoming));
      section.append(element("p", card.phone || "", "phone"));
      section.append(callerOf(card));
      const where = card.talking.length > 0 ? `${words.talking}: ${card.talking.join(", ")}` : `${words.rings}: ${card.ringing.join(", ")}`;
      section.append(element("p", where, "extensions"));
      popup.append(section);
    }
    popup.hidden = mine.length === 0;
  };

  const showBoard = () => {
    const board = document.querySelector("#live-calls tbody");
    if (!board) return;
    board.replaceChildren();
    for (const card of cards.values()) {
      const row = element("tr");
      row.id = `live-${card.call_id}`;
      const caller = card.caller.state === "known" ? link(card.caller.contact) : element("span", card.caller.state === "looking_up" ? words.looking : words.unknown);
      const cells = [element("td", card.phone || ""), element("td"), element("td", card.ringing.join(", ")), element("td", card.talking.join(", "))];
      cells[1].append(caller);
      row.append(...cells);
      board.append(row);
    }
    const none = document.getElementById("no-calls");
    if (none) none.hidden = cards.size > 0;
  };

  const feed = new EventSource("/api/v1/calls/live");
  feed.addEventListener("call", (event) => {
    const card = JSON.parse(event.data);
    cards.set(card.id, card);
    showPopup();
    showBoard();
  });
  feed.addEventListener("ended", (event) => {
    cards.delete(JSON.parse(event.data).id);
    showPopup();
    showBoard();
  });
})();
