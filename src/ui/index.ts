export { createInspector, createInspectorHandler, type InspectorOptions } from "./inspector.js";
