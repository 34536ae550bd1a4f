<?xml version="1.0" encoding="UTF-8"?>
<!--
  Renders an RSS 2.0 or Atom 1.0 feed as a readable web page for a person who opens the feed in a
  browser, and tells them how to subscribe.

  Written against the RSS 2.0 and Atom 1.0 structures (plus the RFC 5005 archive links), not against
  one generator's output. XSLT 1.0 only: that is all browsers and libxslt run.

  Rules kept here on purpose:
  - No disable-output-escaping (Firefox ignores it): every feed value is written as text, so markup in
    a title or summary is shown, never run. HTML summaries (Atom type="html", or an RSS description
    that carries HTML) are reduced to their text.
  - Links to items and to the site are written only for http and https URLs.
  - The CSS is inline: a relative URL in the output resolves against the feed's URL, and feeds live
    in sub-folders (tags/<slug>/, archive/<format>/).
  - The explanatory text is English; when the feed's language is not, that text carries lang="en".
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:fh="http://purl.org/syndication/history/1.0"
    exclude-result-prefixes="atom dc fh">

  <xsl:output method="html" encoding="UTF-8" indent="no" doctype-system="about:legacy-compat"/>

  <xsl:variable name="lower" select="'abcdefghijklmnopqrstuvwxyz'"/>
  <xsl:variable name="upper" select="'ABCDEFGHIJKLMNOPQRSTUVWXYZ'"/>
  <!-- Languages written right to left (primary subtags), each between spaces. -->
  <xsl:variable name="rtl-languages" select="' ar arc ckb dv fa ha he khw ks ku ps sd ur yi '"/>
  <!-- Elements whose tags separate words when HTML is reduced to text. -->
  <xsl:variable name="block-tags"
      select="' address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table td th tr ul '"/>
  <xsl:variable name="summary-length" select="560"/>

  <!-- The language of the feed, and whether the (English) explanatory text must say so. -->
  <xsl:variable name="raw-lang">
    <xsl:choose>
      <xsl:when test="/rss/channel/language">
        <xsl:value-of select="normalize-space(/rss/channel/language)"/>
      </xsl:when>
      <xsl:when test="/atom:feed/@xml:lang">
        <xsl:value-of select="normalize-space(/atom:feed/@xml:lang)"/>
      </xsl:when>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="lang">
    <xsl:choose>
      <!-- A BCP 47 tag has letters, digits and hyphens only; anything else falls back to en. -->
      <xsl:when test="$raw-lang != '' and translate($raw-lang, concat($lower, $upper, '0123456789-'), '') = ''">
        <xsl:value-of select="$raw-lang"/>
      </xsl:when>
      <xsl:otherwise>en</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="primary-lang">
    <xsl:choose>
      <xsl:when test="contains($lang, '-')">
        <xsl:value-of select="translate(substring-before($lang, '-'), $upper, $lower)"/>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="translate($lang, $upper, $lower)"/></xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="dir">
    <xsl:choose>
      <xsl:when test="contains($rtl-languages, concat(' ', $primary-lang, ' '))">rtl</xsl:when>
      <xsl:otherwise>ltr</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="foreign" select="$primary-lang != 'en'"/>

  <!-- ============================================================ entry points -->

  <xsl:template match="/">
    <xsl:choose>
      <xsl:when test="rss/channel"><xsl:apply-templates select="rss/channel"/></xsl:when>
      <xsl:when test="atom:feed"><xsl:apply-templates select="atom:feed"/></xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="page">
          <xsl:with-param name="kind" select="'XML document'"/>
          <xsl:with-param name="title" select="'Not a feed'"/>
          <xsl:with-param name="description"
              select="'This document is neither an RSS 2.0 nor an Atom 1.0 feed.'"/>
        </xsl:call-template>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="rss/channel">
    <xsl:call-template name="page">
      <xsl:with-param name="kind" select="'RSS feed'"/>
      <xsl:with-param name="title" select="normalize-space(title)"/>
      <xsl:with-param name="description">
        <xsl:call-template name="rss-text"><xsl:with-param name="node" select="description"/></xsl:call-template>
      </xsl:with-param>
      <xsl:with-param name="site" select="normalize-space(link)"/>
      <xsl:with-param name="self" select="normalize-space(atom:link[@rel = 'self'][1]/@href)"/>
      <xsl:with-param name="current" select="normalize-space(atom:link[@rel = 'current'][1]/@href)"/>
      <xsl:with-param name="is-archive" select="boolean(fh:archive)"/>
      <xsl:with-param name="older" select="normalize-space(atom:link[@rel = 'prev-archive'][1]/@href)"/>
      <xsl:with-param name="newer" select="normalize-space(atom:link[@rel = 'next-archive'][1]/@href)"/>
      <xsl:with-param name="items" select="item"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template match="atom:feed">
    <xsl:call-template name="page">
      <xsl:with-param name="kind" select="'Atom feed'"/>
      <xsl:with-param name="title">
        <xsl:call-template name="atom-text"><xsl:with-param name="node" select="atom:title"/></xsl:call-template>
      </xsl:with-param>
      <xsl:with-param name="description">
        <xsl:call-template name="atom-text"><xsl:with-param name="node" select="atom:subtitle"/></xsl:call-template>
      </xsl:with-param>
      <xsl:with-param name="site"
          select="normalize-space(atom:link[@rel = 'alternate' or not(@rel)][1]/@href)"/>
      <xsl:with-param name="self" select="normalize-space(atom:link[@rel = 'self'][1]/@href)"/>
      <xsl:with-param name="current" select="normalize-space(atom:link[@rel = 'current'][1]/@href)"/>
      <xsl:with-param name="is-archive" select="boolean(fh:archive)"/>
      <xsl:with-param name="older" select="normalize-space(atom:link[@rel = 'prev-archive'][1]/@href)"/>
      <xsl:with-param name="newer" select="normalize-space(atom:link[@rel = 'next-archive'][1]/@href)"/>
      <xsl:with-param name="items" select="atom:entry"/>
    </xsl:call-template>
  </xsl:template>

  <!-- ============================================================ the page -->

  <xsl:template name="page">
    <xsl:param name="kind"/>
    <xsl:param name="title"/>
    <xsl:param name="description" select="''"/>
    <xsl:param name="site" select="''"/>
    <xsl:param name="self" select="''"/>
    <xsl:param name="current" select="''"/>
    <xsl:param name="is-archive" select="false()"/>
    <xsl:param name="older" select="''"/>
    <xsl:param name="newer" select="''"/>
    <xsl:param name="items" select="/.."/>
    <xsl:variable name="archive" select="$is-archive or string($current) != ''"/>
    <xsl:variable name="feed-title">
      <xsl:choose>
        <xsl:when test="normalize-space($title) != ''"><xsl:value-of select="normalize-space($title)"/></xsl:when>
        <xsl:otherwise>Untitled feed</xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <!-- An archive page names the current document: that is the one to subscribe to. -->
    <xsl:variable name="subscribe-url">
      <xsl:choose>
        <xsl:when test="string($current) != ''"><xsl:value-of select="$current"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="$self"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <html lang="{$lang}" dir="{$dir}">
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="color-scheme" content="light dark"/>
        <title>
          <xsl:value-of select="$feed-title"/>
          <xsl:text> – </xsl:text>
          <xsl:value-of select="$kind"/>
          <xsl:if test="$archive"><xsl:text> archive</xsl:text></xsl:if>
        </title>
        <style><xsl:call-template name="css"/></style>
      </head>
      <body>
        <a class="skip-link" href="#main">
          <xsl:call-template name="chrome-lang"/>
          <xsl:text>Skip to content</xsl:text>
        </a>
        <header class="page-header">
          <div class="wrap">
            <p class="kind">
              <xsl:call-template name="chrome-lang"/>
              <xsl:value-of select="$kind"/>
              <xsl:if test="$archive"><xsl:text> · archive page</xsl:text></xsl:if>
            </p>
            <h1><xsl:value-of select="$feed-title"/></h1>
            <xsl:if test="normalize-space($description) != '' and normalize-space($description) != normalize-space($feed-title)">
              <p class="description"><xsl:value-of select="normalize-space($description)"/></p>
            </xsl:if>
          </div>
        </header>
        <main id="main" tabindex="-1">
          <div class="wrap">
            <section class="subscribe" aria-labelledby="subscribe-heading">
              <xsl:call-template name="chrome-lang"/>
              <h2 id="subscribe-heading">Subscribe to this feed</h2>
              <p>
                This page is a news feed. Your browser shows it as a web page, but it is made for a
                feed reader: an app or website that collects new articles from the sites you follow
                and shows them to you in one place.
              </p>
              <xsl:choose>
                <xsl:when test="string($subscribe-url) != ''">
                  <p>
                    <xsl:choose>
                      <xsl:when test="$archive">
                        This page is an archive of older items. To get new items, copy the address
                        of the current feed into your feed reader:
                      </xsl:when>
                      <xsl:otherwise>To subscribe, copy this address into your feed reader:</xsl:otherwise>
                    </xsl:choose>
                  </p>
                  <p class="feed-url"><code><xsl:value-of select="$subscribe-url"/></code></p>
                </xsl:when>
                <xsl:otherwise>
                  <p>To subscribe, copy the address of this page from your browser’s address bar into your feed reader.</p>
                </xsl:otherwise>
              </xsl:choose>
              <p class="muted">
                New to feeds? There are free feed readers for phones, computers and the web: search
                for “RSS reader”. They also read Atom feeds.
              </p>
            </section>

            <section class="items" aria-labelledby="items-heading">
              <h2 id="items-heading">
                <xsl:call-template name="chrome-lang"/>
                <xsl:choose>
                  <xsl:when test="$archive">Items on this archive page</xsl:when>
                  <xsl:otherwise>Latest items</xsl:otherwise>
                </xsl:choose>
              </h2>
              <xsl:choose>
                <xsl:when test="$items">
                  <xsl:apply-templates select="$items"/>
                </xsl:when>
                <xsl:otherwise>
                  <p><xsl:call-template name="chrome-lang"/>This feed has no items yet.</p>
                </xsl:otherwise>
              </xsl:choose>
              <xsl:call-template name="archive-nav">
                <xsl:with-param name="older" select="$older"/>
                <xsl:with-param name="newer" select="$newer"/>
              </xsl:call-template>
            </section>
          </div>
        </main>
        <footer class="page-footer">
          <div class="wrap">
            <xsl:call-template name="chrome-lang"/>
            <xsl:if test="$site != ''">
              <p>
                <xsl:text>Read the articles on the website: </xsl:text>
                <xsl:call-template name="link">
                  <xsl:with-param name="href" select="$site"/>
                  <xsl:with-param name="text">
                    <xsl:call-template name="host"><xsl:with-param name="url" select="$site"/></xsl:call-template>
                  </xsl:with-param>
                </xsl:call-template>
              </p>
            </xsl:if>
          </div>
        </footer>
      </body>
    </html>
  </xsl:template>

  <xsl:template name="archive-nav">
    <xsl:param name="older"/>
    <xsl:param name="newer"/>
    <xsl:if test="$older != '' or $newer != ''">
      <nav class="archive-nav" aria-label="Feed pages">
        <xsl:call-template name="chrome-lang"/>
        <ul>
          <xsl:if test="$newer != ''">
            <li>
              <xsl:call-template name="link">
                <xsl:with-param name="href" select="$newer"/>
                <xsl:with-param name="text" select="'Newer items'"/>
              </xsl:call-template>
            </li>
          </xsl:if>
          <xsl:if test="$older != ''">
            <li>
              <xsl:call-template name="link">
                <xsl:with-param name="href" select="$older"/>
                <xsl:with-param name="text" select="'Older items'"/>
              </xsl:call-template>
            </li>
          </xsl:if>
        </ul>
      </nav>
    </xsl:if>
  </xsl:template>

  <!-- ============================================================ items -->

  <xsl:template match="item">
    <xsl:variable name="url">
      <xsl:choose>
        <xsl:when test="normalize-space(link) != ''"><xsl:value-of select="normalize-space(link)"/></xsl:when>
        <xsl:when test="guid[not(@isPermaLink) or @isPermaLink = 'true']">
          <xsl:value-of select="normalize-space(guid)"/>
        </xsl:when>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="summary">
      <xsl:call-template name="rss-text"><xsl:with-param name="node" select="description"/></xsl:call-template>
    </xsl:variable>
    <xsl:variable name="authors">
      <xsl:choose>
        <xsl:when test="dc:creator">
          <xsl:for-each select="dc:creator">
            <xsl:if test="position() != 1">, </xsl:if>
            <xsl:value-of select="normalize-space(.)"/>
          </xsl:for-each>
        </xsl:when>
        <!-- RSS <author> is "address (Name)"; show the name when there is one. -->
        <xsl:when test="contains(author, '(') and contains(substring-after(author, '('), ')')">
          <xsl:value-of select="normalize-space(substring-before(substring-after(author, '('), ')'))"/>
        </xsl:when>
        <xsl:otherwise><xsl:value-of select="normalize-space(author)"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:call-template name="item">
      <xsl:with-param name="title" select="normalize-space(title)"/>
      <xsl:with-param name="url" select="$url"/>
      <xsl:with-param name="summary" select="$summary"/>
      <xsl:with-param name="authors" select="$authors"/>
      <xsl:with-param name="categories" select="category"/>
      <xsl:with-param name="date">
        <xsl:call-template name="rfc822-date"><xsl:with-param name="value" select="pubDate"/></xsl:call-template>
      </xsl:with-param>
      <xsl:with-param name="lang" select="''"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template match="atom:entry">
    <xsl:variable name="summary">
      <xsl:call-template name="atom-text"><xsl:with-param name="node" select="atom:summary"/></xsl:call-template>
    </xsl:variable>
    <xsl:variable name="authors">
      <xsl:for-each select="atom:author/atom:name">
        <xsl:if test="position() != 1">, </xsl:if>
        <xsl:value-of select="normalize-space(.)"/>
      </xsl:for-each>
    </xsl:variable>
    <xsl:call-template name="item">
      <xsl:with-param name="title">
        <xsl:call-template name="atom-text"><xsl:with-param name="node" select="atom:title"/></xsl:call-template>
      </xsl:with-param>
      <xsl:with-param name="url" select="normalize-space(atom:link[@rel = 'alternate' or not(@rel)][1]/@href)"/>
      <xsl:with-param name="summary" select="$summary"/>
      <xsl:with-param name="authors" select="$authors"/>
      <xsl:with-param name="categories" select="atom:category"/>
      <xsl:with-param name="date">
        <xsl:choose>
          <xsl:when test="atom:published">
            <xsl:call-template name="rfc3339-date"><xsl:with-param name="value" select="atom:published"/></xsl:call-template>
          </xsl:when>
          <xsl:otherwise>
            <xsl:call-template name="rfc3339-date">
              <xsl:with-param name="value" select="atom:updated"/>
              <xsl:with-param name="label" select="'Updated '"/>
            </xsl:call-template>
          </xsl:otherwise>
        </xsl:choose>
      </xsl:with-param>
      <xsl:with-param name="lang" select="normalize-space(@xml:lang)"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template name="item">
    <xsl:param name="title"/>
    <xsl:param name="url"/>
    <xsl:param name="summary"/>
    <xsl:param name="authors"/>
    <xsl:param name="categories"/>
    <xsl:param name="date"/>
    <xsl:param name="lang"/>
    <article class="item">
      <xsl:if test="$lang != '' and translate($lang, concat($lower, $upper, '0123456789-'), '') = ''">
        <xsl:attribute name="lang"><xsl:value-of select="$lang"/></xsl:attribute>
      </xsl:if>
      <h3>
        <xsl:call-template name="link">
          <xsl:with-param name="href" select="$url"/>
          <xsl:with-param name="text">
            <xsl:choose>
              <xsl:when test="normalize-space($title) != ''"><xsl:value-of select="normalize-space($title)"/></xsl:when>
              <xsl:otherwise>Untitled item</xsl:otherwise>
            </xsl:choose>
          </xsl:with-param>
        </xsl:call-template>
      </h3>
      <xsl:if test="string($date) != '' or normalize-space($authors) != ''">
        <p class="meta">
          <xsl:copy-of select="$date"/>
          <xsl:if test="normalize-space($authors) != ''">
            <xsl:if test="string($date) != ''"><xsl:text> · </xsl:text></xsl:if>
            <span class="by"><xsl:call-template name="chrome-lang"/>By </span>
            <xsl:value-of select="normalize-space($authors)"/>
          </xsl:if>
        </p>
      </xsl:if>
      <!-- Generators fill a missing summary with the title: saying it twice tells nothing. -->
      <xsl:if test="normalize-space($summary) != '' and normalize-space($summary) != normalize-space($title)">
        <p class="summary">
          <xsl:call-template name="shorten"><xsl:with-param name="text" select="normalize-space($summary)"/></xsl:call-template>
        </p>
      </xsl:if>
      <xsl:if test="$categories">
        <p class="tags">
          <span><xsl:call-template name="chrome-lang"/>Topics: </span>
          <xsl:for-each select="$categories">
            <xsl:if test="position() != 1">, </xsl:if>
            <xsl:choose>
              <xsl:when test="normalize-space(@label) != ''"><xsl:value-of select="normalize-space(@label)"/></xsl:when>
              <xsl:when test="normalize-space(@term) != ''"><xsl:value-of select="normalize-space(@term)"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="normalize-space(.)"/></xsl:otherwise>
            </xsl:choose>
          </xsl:for-each>
        </p>
      </xsl:if>
    </article>
  </xsl:template>

  <!-- ============================================================ text -->

  <!-- Atom text construct: type text (default), html (escaped markup) or xhtml (a div). -->
  <xsl:template name="atom-text">
    <xsl:param name="node"/>
    <xsl:choose>
      <xsl:when test="$node/@type = 'html'">
        <xsl:call-template name="html-to-text"><xsl:with-param name="html" select="string($node)"/></xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="normalize-space($node)"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- RSS descriptions may carry entity-encoded HTML. Treat one as HTML only when it looks like
       it, so plain text such as "a < b" is shown as written. -->
  <xsl:template name="rss-text">
    <xsl:param name="node"/>
    <xsl:variable name="text" select="string($node)"/>
    <xsl:variable name="folded" select="translate($text, $upper, $lower)"/>
    <xsl:choose>
      <xsl:when test="contains($text, '&lt;/') or contains($text, '/&gt;') or contains($folded, '&lt;br')
                      or contains($folded, '&lt;p&gt;') or contains($folded, '&lt;p ')
                      or contains($folded, '&lt;img ') or contains($folded, '&lt;a href')">
        <xsl:call-template name="html-to-text"><xsl:with-param name="html" select="$text"/></xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="normalize-space($text)"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="html-to-text">
    <xsl:param name="html"/>
    <!-- Only the start of a long document is shown, so only the start is read. -->
    <xsl:variable name="text">
      <xsl:call-template name="strip-tags">
        <xsl:with-param name="html" select="substring($html, 1, 4000)"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:call-template name="decode-entities">
      <xsl:with-param name="text" select="normalize-space($text)"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template name="strip-tags">
    <xsl:param name="html"/>
    <xsl:variable name="next" select="substring(substring-after($html, '&lt;'), 1, 1)"/>
    <xsl:choose>
      <!-- As in HTML, "<" starts a tag only before a letter, "/" or "!": "a < b" is text. -->
      <xsl:when test="contains($html, '&lt;') and ($next = '' or translate($next, concat($lower, $upper, '/!'), '') != '')">
        <xsl:value-of select="substring-before($html, '&lt;')"/>
        <xsl:text>&lt;</xsl:text>
        <xsl:call-template name="strip-tags">
          <xsl:with-param name="html" select="substring-after($html, '&lt;')"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="contains($html, '&lt;')">
        <xsl:value-of select="substring-before($html, '&lt;')"/>
        <xsl:variable name="tag" select="substring-before(substring-after($html, '&lt;'), '&gt;')"/>
        <xsl:variable name="rest" select="substring-after(substring-after($html, '&lt;'), '&gt;')"/>
        <xsl:variable name="name"
            select="translate(substring-before(concat(normalize-space(translate($tag, '/', ' ')), ' '), ' '), $upper, $lower)"/>
        <xsl:if test="contains($block-tags, concat(' ', $name, ' '))"><xsl:text> </xsl:text></xsl:if>
        <xsl:choose>
          <!-- The text of a script or style element is not text for a reader. -->
          <xsl:when test="($name = 'script' or $name = 'style') and not(starts-with($tag, '/'))">
            <xsl:variable name="folded" select="translate($rest, $upper, $lower)"/>
            <xsl:variable name="close" select="concat('&lt;/', $name)"/>
            <xsl:if test="contains($folded, $close)">
              <xsl:variable name="after"
                  select="substring($rest, string-length(substring-before($folded, $close)) + string-length($close) + 1)"/>
              <xsl:call-template name="strip-tags">
                <xsl:with-param name="html" select="substring-after($after, '&gt;')"/>
              </xsl:call-template>
            </xsl:if>
          </xsl:when>
          <xsl:otherwise>
            <xsl:call-template name="strip-tags"><xsl:with-param name="html" select="$rest"/></xsl:call-template>
          </xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$html"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- The entities HTML text commonly holds; &amp; last, so "&amp;lt;" becomes "&lt;". -->
  <xsl:template name="decode-entities">
    <xsl:param name="text"/>
    <xsl:variable name="a">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="$text"/>
        <xsl:with-param name="from" select="'&amp;nbsp;'"/>
        <xsl:with-param name="to" select="'&#160;'"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="b">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="$a"/>
        <xsl:with-param name="from" select="'&amp;lt;'"/>
        <xsl:with-param name="to" select="'&lt;'"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="c">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="$b"/>
        <xsl:with-param name="from" select="'&amp;gt;'"/>
        <xsl:with-param name="to" select="'&gt;'"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="d">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="$c"/>
        <xsl:with-param name="from" select="'&amp;quot;'"/>
        <xsl:with-param name="to" select="'&quot;'"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="e">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="$d"/>
        <xsl:with-param name="from" select="'&amp;#39;'"/>
        <xsl:with-param name="to" select='"&apos;"'/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:call-template name="replace">
      <xsl:with-param name="text" select="$e"/>
      <xsl:with-param name="from" select="'&amp;amp;'"/>
      <xsl:with-param name="to" select="'&amp;'"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template name="replace">
    <xsl:param name="text"/>
    <xsl:param name="from"/>
    <xsl:param name="to"/>
    <xsl:choose>
      <xsl:when test="contains($text, $from)">
        <xsl:value-of select="substring-before($text, $from)"/>
        <xsl:value-of select="$to"/>
        <xsl:call-template name="replace">
          <xsl:with-param name="text" select="substring-after($text, $from)"/>
          <xsl:with-param name="from" select="$from"/>
          <xsl:with-param name="to" select="$to"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- A long summary is cut at the end of the word that crosses the limit. -->
  <xsl:template name="shorten">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="string-length($text) &gt; $summary-length + 40">
        <xsl:value-of select="substring($text, 1, $summary-length)"/>
        <xsl:value-of select="substring-before(concat(substring($text, $summary-length + 1, 40), ' '), ' ')"/>
        <xsl:text>…</xsl:text>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- ============================================================ links -->

  <!-- A link for http and https URLs; anything else (javascript:, data:, relative) is plain text. -->
  <xsl:template name="link">
    <xsl:param name="href"/>
    <xsl:param name="text"/>
    <xsl:variable name="scheme" select="translate(substring-before(normalize-space($href), ':'), $upper, $lower)"/>
    <xsl:choose>
      <xsl:when test="($scheme = 'http' or $scheme = 'https') and starts-with(substring-after(normalize-space($href), ':'), '//')">
        <a href="{normalize-space($href)}"><xsl:value-of select="$text"/></a>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="host">
    <xsl:param name="url"/>
    <xsl:variable name="after-scheme" select="substring-after($url, '//')"/>
    <xsl:choose>
      <xsl:when test="contains($after-scheme, '/')"><xsl:value-of select="substring-before($after-scheme, '/')"/></xsl:when>
      <xsl:when test="$after-scheme != ''"><xsl:value-of select="$after-scheme"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$url"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="chrome-lang">
    <xsl:if test="$foreign"><xsl:attribute name="lang">en</xsl:attribute></xsl:if>
  </xsl:template>

  <!-- ============================================================ dates -->

  <!-- "2 January 2006" from a year, month number and day number. -->
  <xsl:template name="human-date">
    <xsl:param name="year"/>
    <xsl:param name="month"/>
    <xsl:param name="day"/>
    <xsl:variable name="names"
        select="'January  February March    April    May      June     July     August   SeptemberOctober  November December '"/>
    <xsl:value-of select="concat(number($day), ' ', normalize-space(substring($names, ($month - 1) * 9 + 1, 9)), ' ', $year)"/>
  </xsl:template>

  <!-- Atom dates are RFC 3339, which HTML's datetime attribute takes as it is. -->
  <xsl:template name="rfc3339-date">
    <xsl:param name="value"/>
    <xsl:param name="label" select="''"/>
    <xsl:variable name="v" select="translate(normalize-space($value), 'tz', 'TZ')"/>
    <xsl:variable name="year" select="substring($v, 1, 4)"/>
    <xsl:variable name="month" select="substring($v, 6, 2)"/>
    <xsl:variable name="day" select="substring($v, 9, 2)"/>
    <xsl:choose>
      <xsl:when test="$v = ''"/>
      <xsl:when test="substring($v, 5, 1) = '-' and substring($v, 8, 1) = '-'
                      and translate(concat($year, $month, $day), '0123456789', '') = ''
                      and $month &gt;= 1 and $month &lt;= 12 and $day &gt;= 1 and $day &lt;= 31">
        <time>
          <xsl:attribute name="datetime">
            <xsl:choose>
              <xsl:when test="substring($v, 11, 1) = 'T'"><xsl:value-of select="$v"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="substring($v, 1, 10)"/></xsl:otherwise>
            </xsl:choose>
          </xsl:attribute>
          <xsl:call-template name="chrome-lang"/>
          <xsl:value-of select="$label"/>
          <xsl:call-template name="human-date">
            <xsl:with-param name="year" select="$year"/>
            <xsl:with-param name="month" select="$month"/>
            <xsl:with-param name="day" select="$day"/>
          </xsl:call-template>
        </time>
      </xsl:when>
      <xsl:otherwise><span class="date"><xsl:value-of select="$label"/><xsl:value-of select="$v"/></span></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- RSS dates are RFC 822: "[Mon, ]2 Jan 2006 15:04[:05] +0000" (or a zone name). -->
  <xsl:template name="rfc822-date">
    <xsl:param name="value"/>
    <xsl:variable name="v" select="normalize-space($value)"/>
    <xsl:variable name="s">
      <xsl:choose>
        <xsl:when test="contains($v, ',')"><xsl:value-of select="normalize-space(substring-after($v, ','))"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="$v"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="day" select="substring-before($s, ' ')"/>
    <xsl:variable name="s2" select="substring-after($s, ' ')"/>
    <xsl:variable name="month-name" select="translate(substring-before($s2, ' '), $upper, $lower)"/>
    <xsl:variable name="s3" select="substring-after($s2, ' ')"/>
    <xsl:variable name="year-text" select="substring-before(concat($s3, ' '), ' ')"/>
    <xsl:variable name="s4" select="substring-after($s3, ' ')"/>
    <xsl:variable name="clock" select="substring-before(concat($s4, ' '), ' ')"/>
    <xsl:variable name="zone" select="translate(substring-after($s4, ' '), $lower, $upper)"/>
    <xsl:variable name="months" select="'janfebmaraprmayjunjulaugsepoctnovdec'"/>
    <xsl:variable name="month"
        select="string-length(substring-before($months, $month-name)) div 3 + 1"/>
    <xsl:variable name="year">
      <xsl:choose>
        <xsl:when test="string-length($year-text) = 2 and $year-text &lt; 50"><xsl:value-of select="2000 + $year-text"/></xsl:when>
        <xsl:when test="string-length($year-text) = 2"><xsl:value-of select="1900 + $year-text"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="$year-text"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="offset">
      <xsl:choose>
        <xsl:when test="(starts-with($zone, '+') or starts-with($zone, '-')) and string-length($zone) = 5
                        and translate(substring($zone, 2), '0123456789', '') = ''">
          <xsl:value-of select="concat(substring($zone, 1, 3), ':', substring($zone, 4, 2))"/>
        </xsl:when>
        <xsl:when test="$zone = 'GMT' or $zone = 'UT' or $zone = 'UTC' or $zone = 'Z'">Z</xsl:when>
        <xsl:when test="$zone = 'EST'">-05:00</xsl:when>
        <xsl:when test="$zone = 'EDT'">-04:00</xsl:when>
        <xsl:when test="$zone = 'CST'">-06:00</xsl:when>
        <xsl:when test="$zone = 'CDT'">-05:00</xsl:when>
        <xsl:when test="$zone = 'MST'">-07:00</xsl:when>
        <xsl:when test="$zone = 'MDT'">-06:00</xsl:when>
        <xsl:when test="$zone = 'PST'">-08:00</xsl:when>
        <xsl:when test="$zone = 'PDT'">-07:00</xsl:when>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="time">
      <xsl:choose>
        <xsl:when test="string-length($clock) = 8 and substring($clock, 3, 1) = ':' and substring($clock, 6, 1) = ':'
                        and translate($clock, '0123456789:', '') = ''">
          <xsl:value-of select="$clock"/>
        </xsl:when>
        <xsl:when test="string-length($clock) = 5 and substring($clock, 3, 1) = ':'
                        and translate($clock, '0123456789:', '') = ''">
          <xsl:value-of select="concat($clock, ':00')"/>
        </xsl:when>
      </xsl:choose>
    </xsl:variable>
    <xsl:choose>
      <xsl:when test="$v = ''"/>
      <xsl:when test="string-length($month-name) = 3 and contains($months, $month-name)
                      and (string-length(substring-before($months, $month-name)) mod 3) = 0
                      and translate($day, '0123456789', '') = '' and $day &gt;= 1 and $day &lt;= 31
                      and string-length($year) = 4 and translate($year, '0123456789', '') = ''">
        <xsl:variable name="date"
            select="concat($year, '-', format-number($month, '00'), '-', format-number($day, '00'))"/>
        <time>
          <xsl:attribute name="datetime">
            <xsl:choose>
              <xsl:when test="$time != '' and $offset != ''"><xsl:value-of select="concat($date, 'T', $time, $offset)"/></xsl:when>
              <xsl:otherwise><xsl:value-of select="$date"/></xsl:otherwise>
            </xsl:choose>
          </xsl:attribute>
          <xsl:call-template name="chrome-lang"/>
          <xsl:call-template name="human-date">
            <xsl:with-param name="year" select="$year"/>
            <xsl:with-param name="month" select="$month"/>
            <xsl:with-param name="day" select="$day"/>
          </xsl:call-template>
        </time>
      </xsl:when>
      <xsl:otherwise><span class="date"><xsl:value-of select="$v"/></span></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- ============================================================ style -->

  <xsl:template name="css">
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1c1d1f; --muted: #4d5157; --panel: #f2f4f7; --line: #c9ced6;
  --link: #0b5cad; --visited: #6b2c91; --focus: #c2410c;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15171a; --fg: #e8eaed; --muted: #b4b9c0; --panel: #22262b; --line: #444b54;
    --link: #8cbcff; --visited: #d3b0f5; --focus: #ffb86b;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif;
  font-size: 1.125rem; line-height: 1.6;
  overflow-wrap: anywhere;
}
.wrap { max-width: 46rem; margin: 0 auto; padding: 0 1.25rem; }
h1, h2, h3 { line-height: 1.25; margin: 0 0 0.5rem; }
h1 { font-size: clamp(1.75rem, 1.2rem + 2.5vw, 2.5rem); }
h2 { font-size: 1.375rem; margin-top: 2.5rem; }
h3 { font-size: 1.25rem; }
p { margin: 0 0 1rem; }
a { color: var(--link); text-decoration-thickness: 0.08em; text-underline-offset: 0.15em; }
a:visited { color: var(--visited); }
a:hover { text-decoration-thickness: 0.15em; }
a:focus-visible, a:focus {
  outline: 3px solid var(--focus); outline-offset: 2px; border-radius: 2px;
}
main:focus { outline: none; }
.skip-link {
  position: absolute; left: 1rem; top: -100rem; z-index: 10;
  padding: 0.75rem 1rem; background: var(--fg); color: var(--bg); font-weight: 600;
}
.skip-link:visited { color: var(--bg); }
.skip-link:focus { top: 1rem; }
.page-header { border-bottom: 1px solid var(--line); padding: 2.5rem 0 1.5rem; }
.kind { text-transform: uppercase; letter-spacing: 0.08em; font-size: 1rem; font-weight: 600; color: var(--muted); margin: 0 0 0.5rem; }
.description { font-size: 1.1875rem; color: var(--muted); margin: 0; }
.subscribe {
  background: var(--panel); border: 1px solid var(--line); border-radius: 0.5rem;
  padding: 0.25rem 1.25rem 0.5rem; margin-top: 2rem;
}
.subscribe h2 { margin-top: 1rem; }
.feed-url code {
  display: block; padding: 0.75rem 1rem; background: var(--bg); border: 1px solid var(--line);
  border-radius: 0.375rem; font-size: 1rem; user-select: all; -webkit-user-select: all;
  font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
.item { border-bottom: 1px solid var(--line); padding: 1.5rem 0 0.5rem; }
.item:last-of-type { border-bottom: 0; }
.meta, .tags { color: var(--muted); font-size: 1rem; margin-bottom: 0.5rem; }
.summary { margin-bottom: 0.75rem; }
.archive-nav ul { list-style: none; padding: 0; margin: 1.5rem 0; display: flex; flex-wrap: wrap; gap: 1rem 2rem; }
.page-footer { border-top: 1px solid var(--line); margin-top: 3rem; padding: 1.5rem 0 2.5rem; }
.muted { color: var(--muted); font-size: 1rem; }
@media (max-width: 30rem) {
  body { font-size: 1.0625rem; }
  .wrap { padding: 0 1rem; }
  .page-header { padding-top: 1.75rem; }
}
@media print { .skip-link, .subscribe { display: none; } }
  </xsl:template>
</xsl:stylesheet>
