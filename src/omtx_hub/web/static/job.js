// Job page: the predicted or docked complex in 3D (3Dmol.js, served by the hub itself).
"use strict";

(async () => {
  const box = document.getElementById("viewer");
  const response = await fetch(box.dataset.structure);
  if (!response.ok) { box.textContent = "The structure file could not be loaded."; return; }
  const cif = await response.text();
  const viewer = $3Dmol.createViewer(box, { backgroundColor: "white" });
  viewer.addModel(cif, "cif");
  const ligand = { hetflag: true };
  viewer.setStyle({}, { cartoon: { color: "spectrum", opacity: 0.5 } });
  viewer.setStyle(ligand, { stick: { colorscheme: "greenCarbon", radius: 0.2 } });
  viewer.addStyle({ within: { distance: 5, sel: ligand }, hetflag: false }, { stick: { radius: 0.1, opacity: 0.6 } });
  // the residues the pose contacts (ProLIF): orange sticks, labelled; polar contacts in bold
  for (const res of JSON.parse(box.dataset.contacts || "[]")) {
    const sel = { chain: res.chain, resi: res.resi, hetflag: false };
    viewer.addStyle(sel, { stick: { colorscheme: "orangeCarbon", radius: 0.18 } });
    viewer.addResLabels(sel, { fontSize: 11, showBackground: false, fontColor: "black", bold: res.types.length > 0 });
  }
  const xyz = ([x, y, z]) => ({ x, y, z });
  for (const bond of JSON.parse(box.dataset.hbonds || "[]")) {
    viewer.addCylinder({ start: xyz(bond.start), end: xyz(bond.end), radius: 0.06, dashed: true, color: "blue",
      fromCap: 1, toCap: 1 });
  }
  viewer.zoomTo(ligand);
  viewer.zoom(0.55);
  viewer.render();
  box.dataset.rendered = "true";
})();
