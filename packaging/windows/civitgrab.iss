; Inno Setup 6 script for civitgrab: a per-user install, no admin rights needed.
;
; Built by packaging/build.py on Windows:
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\civitgrab /DOutputDir=dist /DOutputName=... /DRepoRoot=. civitgrab.iss
;
; - Installs into %LOCALAPPDATA%\Programs\civitgrab ({autopf} of a non-admin install).
; - Start menu shortcut; desktop shortcut optional (unchecked by default).
; - civitgrab-cli.exe is installed next to civitgrab.exe; "Add to PATH" is an optional task (user PATH).
; - The uninstaller removes the program and then ASKS whether to remove the library, settings, logs and
;   thumbnails (%APPDATA%\civitgrab: platformdirs' roaming user data dir). Downloads are never touched.
;   A silent uninstall (/SILENT, /VERYSILENT) keeps them.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef AppNumericVersion
  #define AppNumericVersion "0.0.0.0"
#endif
#ifndef RepoRoot
  #define RepoRoot "..\.."
#endif
#ifndef SourceDir
  #define SourceDir RepoRoot + "\dist\civitgrab"
#endif
#ifndef OutputDir
  #define OutputDir RepoRoot + "\dist"
#endif
#ifndef OutputName
  #define OutputName "civitgrab-" + AppVersion + "-windows-x64-setup"
#endif

#define AppName "civitgrab"
#define AppExe "civitgrab.exe"
#define AppUserModelID "civitgrab.civitgrab"

[Setup]
; AppId identifies the app for upgrades and the uninstaller: never change it.
AppId={{6F1B0C8E-3D2A-4C57-9E0B-2A7D5C4E9B13}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=civitgrab
AppComments=Downloads CivitAI images and videos at full resolution, fetches their tags, converts them to WebP and browses the collection.
VersionInfoVersion={#AppNumericVersion}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
PrivilegesRequired=lowest
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
ChangesEnvironment=yes
CloseApplications=yes
RestartApplications=no
OutputDir={#OutputDir}
OutputBaseFilename={#OutputName}
SetupIconFile={#RepoRoot}\resources\app\civitgrab.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add civitgrab-cli to the PATH (command line use)"; GroupDescription: "Command line:"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the bundle as a whole: no stale libraries from an older version.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; AppUserModelID: "{#AppUserModelID}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon; AppUserModelID: "{#AppUserModelID}"

[Registry]
; Per-user PATH entry (only with the "addtopath" task); removed again by the uninstaller (see [Code]).
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; \
    Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
Type: filesandordirs; Name: "{app}\_internal"

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Paths: string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;

procedure RemoveFromPath(Dir: string);
var
  Paths: string;
  P: Integer;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths) then
    exit;
  P := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';');
  if P = 0 then
    exit;
  { P is 1-based in ';' + Paths + ';': the entry starts at P in Paths, with its ';' before it }
  if P > 1 then
    Delete(Paths, P - 1, Length(Dir) + 1)
  else
    Delete(Paths, 1, Length(Dir) + 1);
  RegWriteExpandStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Paths);
end;

function UserDataDir(): string;
begin
  { platformdirs.user_data_dir("civitgrab", appauthor=False, roaming=True): library, settings, logs, thumbnails }
  Result := ExpandConstant('{userappdata}\{#AppName}');
end;

function UserCacheDir(): string;
begin
  { Qt's own caches (QStandardPaths CacheLocation), if it made any }
  Result := ExpandConstant('{localappdata}\{#AppName}');
end;

procedure ForgetApiKey();
var
  Code: Integer;
begin
  { keyring's Windows backend stores the key as a generic credential named after the service }
  Exec(ExpandConstant('{sys}\cmdkey.exe'), '/delete:{#AppName}', '', SW_HIDE, ewWaitUntilTerminated, Code);
  Exec(ExpandConstant('{sys}\cmdkey.exe'), '/delete:civitai_api_key@{#AppName}', '', SW_HIDE, ewWaitUntilTerminated, Code);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usUninstall then
    RemoveFromPath(ExpandConstant('{app}'));
  if CurUninstallStep <> usPostUninstall then
    exit;
  if UninstallSilent() then
    exit;  { never delete the user's library without asking }
  if not DirExists(UserDataDir()) and not DirExists(UserCacheDir()) then
    exit;
  if MsgBox('Also remove your civitgrab library, settings, logs and thumbnails, and the saved API key?'
      + #13#10#13#10 + UserDataDir()
      + #13#10#13#10 + 'Choose No to keep them for a later install. Downloaded images and videos in your '
      + 'download folders are never removed.',
      mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
  begin
    DelTree(UserDataDir(), True, True, True);
    DelTree(UserCacheDir(), True, True, True);
    ForgetApiKey();
  end;
end;
