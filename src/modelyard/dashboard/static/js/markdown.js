// A small Markdown renderer for model answers: headings, paragraphs, lists (nested), block
// quotes, fenced and indented code, tables, rules; inline code, bold, italic, strike-through,
// links. It builds DOM nodes (createElement and text nodes) and never parses HTML, so a model
// writing `<img src=x onerror=...>` shows that text, and only http(s) and mailto links are
// made. Hand-written rather than vendored: no build step, no second library to keep patched,
// and the whole of what runs on model output fits on a screen. Text arriving token by token is
// rendered again from the start each time: an unclosed fence is code so far, an unclosed `**`
// is text until it closes.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+|$)/;
const TABLE_RULE = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const INDENTED = /^(?: {4}|\t)/;
const SAFE_LINK = /^(https?:|mailto:)/i;

/** `text` as Markdown, in a DocumentFragment. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(String(text ?? "").replace(/\r\n?/g, "\n").split("\n")));
  return fragment;
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const close = new RegExp(`^ {0,3}${fence[1][0] === "`" ? "`" : "~"}{${fence[1].length},}\\s*$`);
      const body = [];
      i += 1;
      while (i < lines.length && !close.test(lines[i])) body.push(lines[i++]);
      i += 1; // the closing fence, when there is one
      out.push(codeBlock(body.join("\n"), fence[2]));
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      out.push(el(`h${heading[1].length}`, inline(heading[2] ?? "")));
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.push(document.createElement("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && QUOTE.test(lines[i])) inner.push(lines[i++].replace(QUOTE, ""));
      out.push(el("blockquote", blocks(inner)));
      continue;
    }
    if (ITEM.test(line)) {
      i = list(lines, i, out);
      continue;
    }
    if (INDENTED.test(line)) {
      const body = [];
      while (i < lines.length && (INDENTED.test(lines[i]) || !lines[i].trim())) body.push(lines[i++]);
      while (body.length && !body[body.length - 1].trim()) body.pop();
      out.push(codeBlock(body.map((l) => l.replace(INDENTED, "")).join("\n"), ""));
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      i = table(lines, i, out);
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && !startsBlock(lines, i)) para.push(lines[i++].trim());
    if (!para.length) para.push(lines[i++].trim()); // a line no block took
    out.push(el("p", lines_(para)));
  }
  return out;
}

function startsBlock(lines, i) {
  const line = lines[i];
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    QUOTE.test(line) ||
    ITEM.test(line) ||
    (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]))
  );
}

/** One list from `lines[start]`; appends it to `out`, returns the index after it. */
function list(lines, start, out) {
  const first = ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const listEl = document.createElement(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) listEl.start = parseInt(first[2], 10);
  let i = start;
  let loose = false;
  const items = [];
  while (i < lines.length) {
    const marker = ITEM.exec(lines[i]);
    if (!marker || /\d/.test(marker[2]) !== ordered) break;
    const indent = marker[0].length || marker[1].length + marker[2].length + 1;
    const body = [lines[i].slice(marker[0].length)];
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        // A blank line ends the item unless the next line is indented into it.
        const next = lines[i + 1];
        if (next !== undefined && leading(next) >= indent && next.trim()) {
          body.push("");
          loose = true;
          i += 1;
          continue;
        }
        break;
      }
      if (leading(line) >= Math.min(indent, 2) && ITEM.test(line.trimStart())) {
        body.push(line.slice(Math.min(leading(line), indent)));
      } else if (leading(line) >= indent) {
        body.push(line.slice(indent));
      } else if (ITEM.test(line) || startsBlock(lines, i)) {
        break;
      } else {
        body.push(line.trim()); // a lazy continuation of the item's paragraph
      }
      i += 1;
    }
    items.push(body);
    const next = ITEM.exec(lines[i + 1] ?? "");
    if (i < lines.length && !lines[i].trim() && next && /\d/.test(next[2]) === ordered) {
      loose = true; // a blank line between two items of this list
      i += 1;
    }
  }
  for (const body of items) {
    const content = blocks(body);
    const li = document.createElement("li");
    // A tight list's item is its text, not a paragraph in it.
    if (!loose && content[0]?.tagName === "P") li.append(...content.shift().childNodes);
    li.append(...content);
    listEl.append(li);
  }
  out.push(listEl);
  return i;
}

function leading(line) {
  return line.length - line.trimStart().length;
}

function table(lines, start, out) {
  const cells = (line) =>
    line
      .trim()
      .replace(/^\|/, "")
      .replace(/\|$/, "")
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
  const aligns = cells(lines[start + 1]).map((c) =>
    c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : c.startsWith(":") ? "left" : "",
  );
  const row = (line, tag) =>
    el(
      "tr",
      cells(line).map((c, n) => {
        const cell = el(tag, inline(c));
        if (aligns[n]) cell.style.textAlign = aligns[n];
        return cell;
      }),
    );
  const body = [];
  let i = start + 2;
  while (i < lines.length && lines[i].trim() && lines[i].includes("|")) body.push(row(lines[i++], "td"));
  const tableEl = el("table", [el("thead", [row(lines[start], "th")]), el("tbody", body)]);
  out.push(el("div", [tableEl], "md-table"));
  return i;
}

function codeBlock(text, language) {
  const code = document.createElement("code");
  code.textContent = text;
  if (language) code.dataset.language = language;
  return el("pre", [code]);
}

/** A paragraph's lines, with their line breaks kept (models mean them). */
function lines_(parts) {
  const out = [];
  parts.forEach((part, n) => {
    if (n) out.push(document.createElement("br"));
    out.push(...inline(part));
  });
  return out;
}

// Alternatives in priority order; the leftmost match wins, then the first alternative there.
const INLINE = new RegExp(
  [
    /\\([\\`*_{}[\]()#+\-.!~|<>])/, // 1: an escaped character
    /(`+)([^`]|[^`][\s\S]*?[^`])\2(?!`)/, // 2, 3: a code span
    /\[([^\]\n]+)\]\(\s*([^()\s]+)\s*\)/, // 4, 5: a link
    /\*\*(?=\S)([\s\S]*?\S)\*\*/, // 6: bold
    /(?<!\w)__(?=\S)([\s\S]*?\S)__(?!\w)/, // 7: bold
    /~~(?=\S)([\s\S]*?\S)~~/, // 8: strike-through
    /\*(?=[^\s*])([\s\S]*?[^\s*])\*/, // 9: italic
    /(?<!\w)_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/, // 10: italic
  ]
    .map((r) => r.source)
    .join("|"),
  "g",
);

/** Inline Markdown in `text`, as a list of nodes. */
export function inline(text) {
  const out = [];
  let at = 0;
  INLINE.lastIndex = 0;
  const matches = [...String(text).matchAll(INLINE)];
  for (const m of matches) {
    if (m.index < at) continue;
    if (m.index > at) out.push(document.createTextNode(text.slice(at, m.index)));
    out.push(inlineNode(m));
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(document.createTextNode(text.slice(at)));
  return out;
}

function inlineNode(m) {
  if (m[1] !== undefined) return document.createTextNode(m[1]);
  if (m[2] !== undefined) {
    const code = document.createElement("code");
    code.textContent = m[3].length > 2 && m[3].startsWith(" ") && m[3].endsWith(" ") ? m[3].slice(1, -1) : m[3];
    return code;
  }
  if (m[4] !== undefined) {
    if (!SAFE_LINK.test(m[5])) return document.createTextNode(m[0]);
    const a = el("a", inline(m[4]));
    a.href = m[5];
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }
  if (m[6] !== undefined || m[7] !== undefined) return el("strong", inline(m[6] ?? m[7]));
  if (m[8] !== undefined) return el("del", inline(m[8]));
  return el("em", inline(m[9] ?? m[10]));
}

function el(tag, children, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}

/**
 * A chat answer's reasoning apart from its answer: a leading `<think>...</think>` (the tag
 * may still be open while streaming, or only its end present when the chat template opened
 * it). Returns `{ reasoning, answer, thinking }`; `thinking` while the reasoning is unfinished.
 */
export function splitThinking(content) {
  const text = String(content ?? "");
  const start = /^\s*<think>/.exec(text);
  if (start) {
    const rest = text.slice(start[0].length);
    const end = rest.indexOf("</think>");
    if (end < 0) return { reasoning: rest, answer: "", thinking: true };
    return { reasoning: rest.slice(0, end), answer: rest.slice(end + 8).replace(/^\s+/, ""), thinking: false };
  }
  if ("<think>".startsWith(text.trimStart()) && text.trim()) return { reasoning: "", answer: "", thinking: true };
  const end = text.indexOf("</think>");
  if (end >= 0 && !text.slice(0, end).includes("<think>")) {
    return { reasoning: text.slice(0, end), answer: text.slice(end + 8).replace(/^\s+/, ""), thinking: false };
  }
  return { reasoning: "", answer: text, thinking: false };
}
