"""Read-only analytics tools, one module (or package) per marketing question. Every tool registers itself;
`tools.registry.load_tools` imports every module under this package."""
