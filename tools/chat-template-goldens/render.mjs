// Renders Qwen3's real chat_template (../shared/qwen3-tokenizer/tokenizer_config.json) with
// @huggingface/jinja for the cases below and writes them, inputs and outputs, to
// flink-qwen3-operator/src/test/resources/chat-template-goldens.json (ChatTemplateGoldenTest reads it).
// Run from this folder: npm ci && npm run render
import { Template } from "@huggingface/jinja";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const config = JSON.parse(readFileSync(resolve(repo, "../shared/qwen3-tokenizer/tokenizer_config.json"), "utf8"));
const template = new Template(config.chat_template);

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city — \"quoted\", <tags> & unicode: Zürich, 東京",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "City name" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        days: { type: "integer", minimum: 1, maximum: 7 },
        threshold: { type: "number", default: 0.5 },
        tags: { type: "array", items: { type: "string" } },
        strict: { type: "boolean", default: false },
        note: { type: ["string", "null"], default: null },
      },
      required: ["city"],
    },
  },
};
const search = { type: "function", function: { name: "search", description: "Line one\nline two\ttab", parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] } } };

const cases = [
  { name: "tools with a system message", tools: [weather, search], messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Weather in Zürich?" }] },
  { name: "tools without a system message, no thinking", tools: [search], enable_thinking: false, messages: [
    { role: "user", content: "Find flink docs" }] },
  { name: "assistant tool calls (OpenAI form, string arguments) and tool responses", tools: [weather], messages: [
    { role: "system", content: "sys" },
    { role: "user", content: "Weather in Paris and Rome?" },
    { role: "assistant", content: "", tool_calls: [
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\": \"Paris\"}" } },
      { id: "call_2", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Rome\",\"unit\":\"celsius\"}" } }] },
    { role: "tool", content: "{\"temp\": 21}" },
    { role: "tool", content: "{\"temp\": 25}" }] },
  { name: "tool calls with object arguments after text, then the final answer", tools: [weather], messages: [
    { role: "user", content: "Paris?" },
    { role: "assistant", content: "Let me check.", tool_calls: [
      { name: "get_weather", arguments: { city: "Paris", days: 2, tags: ["a", "b"], strict: true, note: null, threshold: 0.25 } }] },
    { role: "tool", content: "sunny" },
    { role: "assistant", content: "It is sunny in Paris." }], add_generation_prompt: false },
  { name: "reasoning_content after the last user query is kept, before it dropped", messages: [
    { role: "user", content: "q1" },
    { role: "assistant", content: "a1", reasoning_content: "r1" },
    { role: "user", content: "q2" },
    { role: "assistant", content: "a2", reasoning_content: "\nr2\n" }], add_generation_prompt: false },
  { name: "reasoning_content wins over a think block in content; empty reasoning_content", messages: [
    { role: "user", content: "q" },
    { role: "assistant", content: "<think>inline</think>\n\nx", reasoning_content: "explicit" },
    { role: "tool", content: "result" },
    { role: "assistant", content: "y", reasoning_content: "" }], add_generation_prompt: false },
  { name: "think block in content, multi-step tool turn (tool_response user message)", messages: [
    { role: "user", content: "first" },
    { role: "assistant", content: "<think>\nplan\n</think>\n\ncalling", tool_calls: [
      { type: "function", function: { name: "search", arguments: { q: "x" } } }] },
    { role: "user", content: "<tool_response>\nfound\n</tool_response>" },
    { role: "assistant", content: "<think>more</think>done" }] },
  { name: "unknown roles are skipped", messages: [
    { role: "developer", content: "ignored" },
    { role: "user", content: "hi" },
    { role: "function", content: "also ignored" },
    { role: "assistant", content: "hello" },
    { role: "user", content: "bye" }], enable_thinking: false },
  { name: "system message not first and tools", tools: [search], messages: [
    { role: "user", content: "a" },
    { role: "system", content: "late system" },
    { role: "user", content: "b" }] },
];

const out = cases.map((c) => {
  const add = c.add_generation_prompt ?? true;
  const vars = { messages: c.messages, add_generation_prompt: add, bos_token: "", eos_token: config.eos_token };
  if (c.tools) vars.tools = c.tools;
  if (c.enable_thinking !== undefined) vars.enable_thinking = c.enable_thinking;
  return { name: c.name, messages: c.messages, tools: c.tools ?? null, add_generation_prompt: add,
    enable_thinking: c.enable_thinking ?? true, rendered: template.render(vars) };
});
const target = resolve(repo, "flink-qwen3-operator/src/test/resources/chat-template-goldens.json");
writeFileSync(target, JSON.stringify({ template_source: "../shared/qwen3-tokenizer/tokenizer_config.json",
  renderer: "@huggingface/jinja " + JSON.parse(readFileSync(resolve(here, "node_modules/@huggingface/jinja/package.json"), "utf8")).version,
  cases: out }, null, 2) + "\n");
console.log(`wrote ${out.length} cases to ${target}`);
