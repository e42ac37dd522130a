// MathJax 3 (vendored in javascripts/mathjax): TeX from pymdownx.arithmatex (\( \) and \[ \]) and
// AsciiMath between backticks (the ops' formulas, see docs/ops_math.py), only inside .arithmatex.
window.MathJax = {
  loader: {load: ["input/tex", "input/asciimath", "output/chtml"]},
  tex: {inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true},
  asciimath: {delimiters: [["`", "`"]], displaystyle: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
};

// Material's instant navigation swaps pages without reloading: typeset each new page.
if (window.document$) {
  window.document$.subscribe(() => {
    if (window.MathJax.typesetPromise) {
      window.MathJax.startup.output.clearCache();
      window.MathJax.typesetClear();
      window.MathJax.texReset();
      window.MathJax.typesetPromise();
    }
  });
}
