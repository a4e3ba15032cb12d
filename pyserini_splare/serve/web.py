"""The page at ``/``: a search box, an index/pipeline picker, results with their text and the terms
they matched on highlighted (the explain answer of POST search). One static page, no build step,
no external resources (it works offline and under a strict CSP)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pyserini_splare search</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
form{display:flex;gap:.5rem;margin-bottom:1rem} input[type=text]{flex:1;font-size:1.1rem;padding:.4rem}
select,button{font-size:1rem;padding:.4rem} .hit{border-bottom:1px solid #ddd;padding:.6rem 0}
.docid{font-weight:600} .score{color:#666;margin-left:.5rem} .doc{margin:.3rem 0;line-height:1.4}
mark{background:#ffe066;padding:0 .1rem} .terms span{display:inline-block;margin:.1rem .3rem .1rem 0;
padding:.05rem .4rem;background:#eef;border-radius:.3rem;font-size:.85rem} #status{color:#a00}
</style></head><body>
<h1>pyserini_splare search</h1>
<form id="f"><input type="text" id="q" placeholder="query" autofocus>
<select id="target"></select><input type="number" id="hits" value="10" min="1" style="width:4rem">
<button type="submit">Search</button></form>
<details><summary>API key</summary><input type="password" id="key" placeholder="X-API-Key"></details>
<div id="status"></div><div id="results"></div>
<script>
const $ = id => document.getElementById(id);
function headers(){const k=$('key').value||localStorage.getItem('key')||'';
  if($('key').value) localStorage.setItem('key',$('key').value);
  const h={'Content-Type':'application/json'}; if(k) h['X-API-Key']=k; return h;}
async function load(){
  const r=await fetch('/v1/indexes',{headers:headers()}); const j=await r.json();
  if(!r.ok){$('status').textContent=j.error; return;}
  $('status').textContent='';
  for(const ix of j.indexes){const o=document.createElement('option'); o.value=ix.name;
    o.textContent=ix.pipeline?ix.name+' (pipeline)':ix.name+' ('+ix.backend+')'; o.dataset.pipeline=!!ix.pipeline;
    $('target').appendChild(o);}
}
function esc(s){return s.replace(/[&<>"']/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));}
function highlight(text, terms){
  if(!terms.length) return esc(text);
  const words=terms.map(t=>t.toLowerCase().replace(/^##/,'')).filter(t=>t.length>1 && /^[\\p{L}\\p{N}]+$/u.test(t));
  if(!words.length) return esc(text);
  const re=new RegExp('([\\\\p{L}\\\\p{N}]+)','gu');
  return text.split(re).map((part,i)=>{ if(i%2==0) return esc(part);
    const low=part.toLowerCase();
    // the term itself, or a word sharing it as a prefix (computer / computers), never a short fragment
    const hit=words.some(w=>low===w || (low.length>=4 && w.length>=4 && (low.startsWith(w) || w.startsWith(low))));
    return hit?'<mark>'+esc(part)+'</mark>':esc(part);}).join('');
}
async function search(ev){
  ev.preventDefault(); $('status').textContent=''; $('results').innerHTML='';
  const opt=$('target').selectedOptions[0]; const body={query:$('q').value, hits:Number($('hits').value)};
  if(opt && opt.dataset.pipeline!=='true') body.explain=true;
  const r=await fetch('/v1/'+encodeURIComponent($('target').value)+'/search',{method:'POST',headers:headers(),body:JSON.stringify(body)});
  const j=await r.json(); if(!r.ok){$('status').textContent=j.error; return;}
  const out=[];
  for(const c of j.candidates){
    const terms=(c.explain||[]).map(e=>e.term);
    const chips=(c.explain||[]).map(e=>'<span title="contribution '+e.contribution.toFixed(2)+'">'+esc(e.label||e.term)+' '+e.contribution.toFixed(1)+'</span>').join('');
    out.push('<div class="hit"><span class="rank">'+c.rank+'.</span> <span class="docid">'+esc(c.docid)+'</span><span class="score">'+c.score.toFixed(4)+'</span>'+
      '<div class="doc">'+(c.doc?highlight(c.doc.slice(0,600),terms):'<i>(no text)</i>')+'</div><div class="terms">'+chips+'</div></div>');
  }
  $('results').innerHTML=out.join('')||'<p>no results</p>';
}
$('key').addEventListener('input',()=>{localStorage.setItem('key',$('key').value); $('target').innerHTML=''; load();});
$('f').addEventListener('submit',search); load();
</script></body></html>
"""
